/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The service stage (tp_service.h has the maps): is a new connection addressed to a
 * service frontend, and which backend takes it — the client's affine backend while its
 * ClientIP affinity lasts, else the frontend's Maglev table at the flow's slot.
 */
#ifndef TP_LIB_LB_H
#define TP_LIB_LB_H

#include <stdbool.h>

#include "config.h"
#include "maps.h"
#include "parse.h"

/* The backend a new connection goes to. */
struct tp_xlate {
	__u8 addr[16];
	__u32 id;
	__u16 port;
	__u8 hairpin; /* the backend is the client itself */
};


static __always_inline __u32 tp_rol32(__u32 w, __u32 s)
{
	return (w << s) | (w >> (32 - s));
}

/* XOR of an address's four 32-bit words, read little-endian from its 16 bytes. */
static __always_inline __u32 tp_addr_fold(const __u8 *a)
{
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
	return w[0] ^ w[1] ^ w[2] ^ w[3];
}

/*
 * The flow hash that picks a Maglev slot (slot = hash % lut_size), the same on every
 * node for the same flow: Bob Jenkins' lookup3 final mix of three words, as the
 * kernel's jhash_3words(a, b, c, initval) computes it, with
 *   a = tp_addr_fold(source), b = tp_addr_fold(destination),
 *   c = source port << 16 | destination port (port values, host order),
 *   initval = seed ^ protocol (seed: tp_config.lb_seed).
 * Written out here so a reimplementation (the tests' model) can match it bit for bit.
 */
static __always_inline __u32 tp_flow_hash(const struct tp_packet *p, __u32 seed)
{
	__u32 init = (seed ^ p->protocol) + 0xdeadbeef + (3 << 2);
	__u32 a = tp_addr_fold(p->saddr) + init;
	__u32 b = tp_addr_fold(p->daddr) + init;
	__u32 c = (((__u32)bpf_ntohs(p->sport) << 16) | bpf_ntohs(p->dport)) + init;

	c ^= b; c -= tp_rol32(b, 14);
	a ^= c; a -= tp_rol32(c, 11);
	b ^= a; b -= tp_rol32(a, 25);
	c ^= b; c -= tp_rol32(b, 16);
	a ^= c; a -= tp_rol32(c, 4);
	b ^= a; b -= tp_rol32(a, 14);
	c ^= b; c -= tp_rol32(b, 24);
	return c;
}

/* The NodePort frontend of p's port and protocol, seen from `origin` (p is addressed to a node), or NULL. */
static __always_inline const struct tp_svc_value *tp_lb_nodeport(const struct tp_packet *p, __u8 origin)
{
	struct tp_svc_key k = { .family = p->family, .protocol = p->protocol, .port = p->dport, .origin = origin, .nodeport = 1 };

	if (p->protocol != IPPROTO_TCP && p->protocol != IPPROTO_UDP && p->protocol != IPPROTO_SCTP)
		return NULL;
	return bpf_map_lookup_elem(&tp_svc_v1, &k);
}

/*
 * The frontend p is addressed to, seen from `origin`, or NULL. `to_node`: the
 * destination is a node's address, so a NodePort may match.
 */
static __always_inline const struct tp_svc_value *tp_lb_frontend(const struct tp_packet *p, __u8 origin, bool to_node)
{
	struct tp_svc_key k = { .family = p->family, .protocol = p->protocol, .port = p->dport, .origin = origin };
	const struct tp_svc_value *v;

	if (p->protocol != IPPROTO_TCP && p->protocol != IPPROTO_UDP && p->protocol != IPPROTO_SCTP)
		return NULL;
	__builtin_memcpy(k.addr, p->daddr, 16);
	v = bpf_map_lookup_elem(&tp_svc_v1, &k);
	return v || !to_node ? v : tp_lb_nodeport(p, origin);
}

static __always_inline const struct tp_backend *tp_backend_of(__u32 id)
{
	const struct tp_backend *be = bpf_map_lookup_elem(&tp_backends_v1, &id);

	return be && be->state != TP_BACKEND_FREE ? be : NULL;
}

/*
 * Whether an established service connection stays on the backend it was sent to: while
 * that backend exists for the service, terminating or not; a not-ready one keeps TCP
 * connections only (as kube-proxy's conntrack does), other flows — UDP above all — move
 * on at their next packet instead of staying pinned to a backend that stopped serving.
 */
static __always_inline bool tp_lb_keeps(const struct tp_ct_entry *e, __u8 protocol)
{
	const struct tp_backend *be = tp_backend_of(e->backend_id);

	if (!be || be->service_id != e->service_id || be->port != e->backend_port || !tp_addr_eq(be->addr, e->backend_addr))
		return false;
	return be->state != TP_BACKEND_UNREADY || protocol == IPPROTO_TCP;
}

static __always_inline void tp_affinity_key_of(struct tp_affinity_key *k, __u32 service_id, __u8 scope, __u8 family,
					       const __u8 *client)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->service_id = service_id;
	k->family = family;
	k->scope = scope;
	__builtin_memcpy(k->client, client, 16);
}

/* The client's backend while its affinity lasts and that backend still takes connections; else 0. */
static __always_inline __u32 tp_lb_affine(const struct tp_svc_value *v, const struct tp_packet *p, __u64 now)
{
	struct tp_affinity_key k;
	const struct tp_affinity_value *a;
	const struct tp_backend *be;

	tp_affinity_key_of(&k, v->service_id, v->affinity_scope, p->family, p->saddr);
	a = bpf_map_lookup_elem(&tp_affinity_v1, &k);
	if (!a || now - a->used_ns > (__u64)v->affinity_timeout_s * TP_SECOND_NS)
		return 0;
	be = tp_backend_of(a->backend_id);
	return be && be->state == TP_BACKEND_ACTIVE && be->service_id == v->service_id ? a->backend_id : 0;
}

/* The conntrack flags of a DNAT entry through frontend v: whether traffic refreshes an affinity, and of which scope. */
static __always_inline __u8 tp_ct_affinity_flags(const struct tp_svc_value *v)
{
	if (!v->affinity_timeout_s)
		return 0;
	return TP_CT_F_AFFINITY | (v->affinity_scope == TP_AFFINITY_LOCAL ? TP_CT_F_AFFINITY_LOCAL : 0);
}

/* Starts or refreshes the client's affinity (of scope `scope`) to backend id. */
static __always_inline void tp_lb_remember(__u32 service_id, __u8 scope, __u8 family, const __u8 *client, __u32 id, __u64 now)
{
	struct tp_affinity_key k;
	struct tp_affinity_value a = { .used_ns = now, .backend_id = id };

	tp_affinity_key_of(&k, service_id, scope, family, client);
	bpf_map_update_elem(&tp_affinity_v1, &k, &a, BPF_ANY);
}

/*
 * A packet of an established service connection from its client: whether it stays on
 * its backend (tp_lb_keeps); when it does and the packet refreshed the connection, the
 * client's ClientIP affinity is refreshed too (traffic keeps affinity alive).
 */
static __always_inline bool tp_lb_established(const struct tp_ct_entry *e, const struct tp_packet *p, bool refreshed, __u64 now)
{
	if (!tp_lb_keeps(e, p->protocol))
		return false;
	if (refreshed && (e->flags & TP_CT_F_AFFINITY))
		tp_lb_remember(e->service_id, e->flags & TP_CT_F_AFFINITY_LOCAL ? TP_AFFINITY_LOCAL : TP_AFFINITY_CLUSTER, p->family,
			       p->saddr, e->backend_id, now);
	return true;
}

/* Picks the backend of a new connection of p to frontend v into *x; false when there is none. */
static __always_inline bool tp_lb_pick(const struct tp_packet *p, const struct tp_svc_value *v, __u64 now, struct tp_xlate *x)
{
	__u32 zero = 0, slot, id = 0;
	const struct tp_config *cfg;
	const struct tp_backend *be;
	const __u32 *found;
	void *lut;

	if (!v->lut_size)
		return false;
	if (v->affinity_timeout_s)
		id = tp_lb_affine(v, p, now);
	if (!id) {
		cfg = bpf_map_lookup_elem(&tp_config_v1, &zero);
		lut = bpf_map_lookup_elem(&tp_lut_v1, &v->lut_id);
		if (!cfg || !lut)
			return false;
		slot = tp_flow_hash(p, cfg->lb_seed) % v->lut_size;
		found = bpf_map_lookup_elem(lut, &slot);
		if (!found)
			return false;
		id = *found;
	}
	be = tp_backend_of(id);
	if (!be || be->family != p->family)
		return false;
	__builtin_memcpy(x->addr, be->addr, 16);
	x->port = be->port;
	x->id = id;
	x->hairpin = tp_addr_eq(be->addr, p->saddr);
	return true;
}

#endif
