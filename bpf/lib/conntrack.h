/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The conntrack stage (tp_ct.h has the map and the entry layout): one lookup tells a
 * packet of a known connection (either direction) from a new one; new connections the
 * later stages allow are recorded with tp_ct_create().
 */
#ifndef TP_LIB_CONNTRACK_H
#define TP_LIB_CONNTRACK_H

#include <stdbool.h>

#include "config.h"
#include "maps.h"
#include "parse.h"

enum tp_ct_result {
	TP_CT_NEW = 0,
	TP_CT_ESTABLISHED = 1, /* packet in the direction the connection was opened */
	TP_CT_REPLY = 2,       /* packet in the opposite direction */
};

/* The connection key of p on endpoint ep, from the pod's side (see tp_ct.h). */
static __always_inline void tp_ct_key_of(struct tp_ct_key *k, const struct tp_packet *p, __u32 ep, __u8 dir)
{
	if (dir == TP_DIR_INGRESS) {
		__builtin_memcpy(k->pod_addr, p->daddr, 16);
		__builtin_memcpy(k->peer_addr, p->saddr, 16);
		k->pod_port = p->dport;
		k->peer_port = p->sport;
	} else {
		__builtin_memcpy(k->pod_addr, p->saddr, 16);
		__builtin_memcpy(k->peer_addr, p->daddr, 16);
		k->pod_port = p->sport;
		k->peer_port = p->dport;
	}
	k->endpoint_id = ep;
	k->protocol = p->protocol;
	k->family = p->family;
	k->pad[0] = 0;
	k->pad[1] = 0;
}

static __always_inline __u64 tp_ct_lifetime(__u8 protocol, __u8 flags)
{
	if (protocol != IPPROTO_TCP)
		return tp_ct_lifetime_other_ns;
	if (flags & TP_CT_F_CLOSING)
		return tp_ct_lifetime_tcp_closing_ns;
	if (flags & TP_CT_F_SEEN_REPLY)
		return tp_ct_lifetime_tcp_ns;
	return tp_ct_lifetime_tcp_syn_ns;
}

static __always_inline __u8 tp_ct_flags_after(const struct tp_packet *p, __u8 flags, bool reply)
{
	if (reply)
		flags |= TP_CT_F_SEEN_REPLY;
	if (p->protocol == IPPROTO_TCP && (p->tcp_flags & (TP_TCP_FIN | TP_TCP_RST)))
		flags |= TP_CT_F_CLOSING;
	return flags;
}

/*
 * The key of the other entry of a service connection (see tp_ct.h and enum tp_ct_nat):
 * the DNAT entry names the backend, the RNAT entry the frontend.
 */
static __always_inline void tp_ct_twin_key(struct tp_ct_key *twin, const struct tp_ct_key *k, const struct tp_ct_entry *e)
{
	bool hairpin = e->flags & TP_CT_F_HAIRPIN;
	bool snat = e->flags & TP_CT_F_SNAT;

	*twin = *k;
	if (e->flags & TP_CT_F_EXTERNAL) {
		/* Keyed from the node's side (tp_ct.h): the client is the peer, or nat_* after SNAT. */
		if (e->nat == TP_CT_NAT_DNAT) {
			__builtin_memcpy(twin->pod_addr, snat ? e->nat_addr : e->backend_addr, 16);
			twin->pod_port = snat ? e->nat_port : e->backend_port;
			if (snat) {
				__builtin_memcpy(twin->peer_addr, e->backend_addr, 16);
				twin->peer_port = e->backend_port;
			}
		} else {
			__builtin_memcpy(twin->pod_addr, e->frontend_addr, 16);
			twin->pod_port = e->frontend_port;
			if (snat) {
				__builtin_memcpy(twin->peer_addr, e->nat_addr, 16);
				twin->peer_port = e->nat_port;
			}
		}
		return;
	}
	if (e->nat == TP_CT_NAT_DNAT) {
		if (hairpin) {
			__builtin_memcpy(twin->pod_addr, e->backend_addr, 16);
			twin->pod_port = e->backend_port;
			__builtin_memcpy(twin->peer_addr, e->frontend_addr, 16);
			twin->peer_port = k->pod_port;
		} else {
			__builtin_memcpy(twin->peer_addr, e->backend_addr, 16);
			twin->peer_port = e->backend_port;
		}
	} else {
		if (hairpin)
			twin->pod_port = k->peer_port;
		__builtin_memcpy(twin->peer_addr, e->frontend_addr, 16);
		twin->peer_port = e->frontend_port;
	}
}

/* Gives the twin of a service connection's entry what `e` learnt: flags and lifetime. */
static __always_inline void tp_ct_sync_twin(const struct tp_ct_key *k, const struct tp_ct_entry *e)
{
	struct tp_ct_key twin_key;
	struct tp_ct_entry *twin;

	tp_ct_twin_key(&twin_key, k, e);
	twin = bpf_map_lookup_elem(&tp_ct_v2, &twin_key);
	if (!twin)
		return;
	twin->flags |= e->flags & (TP_CT_F_SEEN_REPLY | TP_CT_F_CLOSING);
	if (twin->expires_ns < e->expires_ns)
		twin->expires_ns = e->expires_ns;
}

/*
 * Extends a live entry; writes only when flags change or the expiry moved by
 * tp_ct_refresh_ns (a service connection's twin with it). Returns whether it wrote.
 */
static __always_inline bool tp_ct_touch(const struct tp_ct_key *k, struct tp_ct_entry *e, const struct tp_packet *p,
					__u64 now, bool reply)
{
	__u8 flags = tp_ct_flags_after(p, e->flags, reply);
	__u64 expires = now + tp_ct_lifetime(p->protocol, flags);

	if (flags == e->flags && expires < e->expires_ns + tp_ct_refresh_ns && expires >= e->expires_ns)
		return false;
	e->flags = flags;
	e->expires_ns = expires;
	if (e->nat != TP_CT_NAT_NONE)
		tp_ct_sync_twin(k, e);
	return true;
}

/*
 * While an upgraded agent migrates (tp_config.ct_legacy), a connection an older agent's
 * programs recorded in tp_ct_v1 is moved into tp_ct_v2 on its first packet here.
 */
static __always_inline struct tp_ct_entry *tp_ct_adopt_legacy(const struct tp_ct_key *k)
{
	__u32 zero = 0;
	const struct tp_config *cfg = bpf_map_lookup_elem(&tp_config_v1, &zero);
	const struct tp_ct_entry_v1 *old;
	struct tp_ct_entry e = {};

	if (!cfg || !cfg->ct_legacy)
		return NULL;
	old = bpf_map_lookup_elem(&tp_ct_v1, k);
	if (!old)
		return NULL;
	e.expires_ns = old->expires_ns;
	e.rule_id = old->rule_id;
	e.flags = old->flags;
	e.opened = old->opened;
	bpf_map_update_elem(&tp_ct_v2, k, &e, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tp_ct_v2, k);
}

/*
 * A known connection: its entry, and whether this packet refreshed it (see tp_ct_touch).
 * On TP_CT_NEW, `stale` is the entry this key still has when it no longer counts (expired,
 * or closed and reopened by a SYN), which the new connection's entry may take over in
 * place (tp_ct_create).
 */
struct tp_ct_hit {
	struct tp_ct_entry *entry;
	struct tp_ct_entry *stale;
	bool refreshed;
};

/*
 * Whether entry e no longer counts for packet p: expired, or closed and reopened by a TCP
 * SYN (without ACK) on the same ports, which opens a new connection as the kernel's
 * conntrack has it: judged (and load-balanced) afresh.
 */
static __always_inline bool tp_ct_is_stale(const struct tp_ct_entry *e, const struct tp_packet *p, __u64 now)
{
	if (e->expires_ns <= now)
		return true;
	return p->protocol == IPPROTO_TCP && (e->flags & TP_CT_F_CLOSING) && (p->tcp_flags & (TP_TCP_SYN | TP_TCP_ACK)) == TP_TCP_SYN;
}

/*
 * k's entry when it no longer counts for the opening packet p of a new connection
 * (tp_ct_is_stale), for tp_ct_create to take over; else NULL.
 */
static __always_inline struct tp_ct_entry *tp_ct_stale_of(const struct tp_ct_key *k, const struct tp_packet *p, __u64 now)
{
	struct tp_ct_entry *e = bpf_map_lookup_elem(&tp_ct_v2, k);

	return e && tp_ct_is_stale(e, p, now) ? e : NULL;
}

/*
 * Finds the connection of key k with one lookup: a packet of the direction that opened
 * it, or a reply. Expired entries count as absent. *hit is filled on a hit.
 */
static __always_inline enum tp_ct_result tp_ct_lookup(const struct tp_ct_key *k, const struct tp_packet *p, __u8 dir,
						       __u64 now, struct tp_ct_hit *hit)
{
	struct tp_ct_entry *e;
	bool reply;

	e = bpf_map_lookup_elem(&tp_ct_v2, k);
	if (!e)
		e = tp_ct_adopt_legacy(k);
	if (!e)
		return TP_CT_NEW;
	if (tp_ct_is_stale(e, p, now)) {
		hit->stale = e;
		return TP_CT_NEW;
	}
	reply = e->opened != dir;
	hit->refreshed = tp_ct_touch(k, e, p, now, reply);
	hit->entry = e;
	return reply ? TP_CT_REPLY : TP_CT_ESTABLISHED;
}

/* A new entry for a connection p opens in direction dir (the caller adds NAT fields). */
static __always_inline void tp_ct_entry_init(struct tp_ct_entry *e, const struct tp_packet *p, __u8 dir, __u64 now,
					     __u32 rule_id)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->flags = tp_ct_flags_after(p, 0, false);
	e->opened = dir;
	e->expires_ns = now + tp_ct_lifetime(p->protocol, e->flags);
	e->rule_id = rule_id;
}

/* A digest of key k, never 0 (the tag of entries written without one). */
static __always_inline __u32 tp_ct_key_tag(const struct tp_ct_key *k)
{
	const __u32 *w = (const __u32 *)k;
	__u32 h = 0x9e3779b9;

#pragma unroll
	for (int i = 0; i < sizeof(*k) / 4; i++)
		h = (h ^ w[i]) * 0x01000193;
	return h | 1;
}

/*
 * Records a connection. A full table evicts its coldest entry, never refuses. `stale`,
 * when not NULL, is k's entry that no longer counts (tp_ct_hit): it is overwritten in
 * place, which spares the LRU table's allocation and free (each under a lock, about a
 * third of a new connection's time in the programs): a client that opens connections
 * fast reuses its ports while their closed entries linger. The expiry, which every
 * reader checks first, is zeroed before the rest is written and set last (atomic
 * exchanges: ordered stores), so a packet read in between sees no connection. A
 * preallocated table hands an element it evicts or frees to the next insert at once,
 * so the entry is taken over only while its key tag still says it is k's; otherwise,
 * and for an entry written without a tag, it is an update. What remains (and what an
 * update would not do): a packet of the closed connection on another CPU, between its
 * own expiry check and its write, can still set its flags and lifetime in the new
 * entry (a closed TCP connection's last segments are long gone when its ports come
 * back; the new connection then lives 10 s unless it answers), and two CPUs taking
 * one entry over at once write the same connection into it.
 */
static __always_inline void tp_ct_create(const struct tp_ct_key *k, struct tp_ct_entry *e, struct tp_ct_entry *stale)
{
	e->key_tag = tp_ct_key_tag(k);
	if (!stale || stale->key_tag != e->key_tag) {
		bpf_map_update_elem(&tp_ct_v2, k, e, BPF_ANY);
		return;
	}
	__atomic_exchange_n(&stale->expires_ns, 0, __ATOMIC_SEQ_CST);
	__builtin_memcpy((__u8 *)stale + sizeof(e->expires_ns), (const __u8 *)e + sizeof(e->expires_ns),
			 sizeof(*e) - sizeof(e->expires_ns));
	__atomic_exchange_n(&stale->expires_ns, e->expires_ns, __ATOMIC_SEQ_CST);
}

#endif
