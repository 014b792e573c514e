/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The uplink pipeline: traffic from outside the cluster to NodePorts, external IPs and
 * load balancer IPs, translated on the node's uplink (see tp_ct.h for its entries).
 *
 *   from outside, new   frontend lookup (a NodePort only on this node's own addresses)
 *                       → backend from the frontend's external set (externalTrafficPolicy)
 *                       → a backend on this node: DNAT only, the client's address is kept,
 *                         and the packet goes on through the stack to the pod's veth, whose
 *                         policy judges it; another node's: DNAT and SNAT to this node's
 *                         address and a free port, sent straight back out of the uplink, so
 *                         the backend's replies return here (its policy then judges this
 *                         node, as with kube-proxy)
 *                       → no backend: refused from here (REJECT) or dropped (Local, none here)
 *   from outside, known established: translated as the first packet was; a reply to a
 *                       SNATed connection: back to the client, from the frontend
 *   to outside          a local backend's reply leaves with the frontend as its source
 *                       (rewritten by tp_from_pod, tp_external_reply)
 * Everything else on the uplink — the node's own traffic — passes untouched
 * (TP_PASS_UPLINK): this is not a firewall of the node.
 */
#ifndef TP_LIB_UPLINK_H
#define TP_LIB_UPLINK_H

#include "conntrack.h"
#include "lb.h"
#include "nat.h"
#include "policy.h"
#include "reply.h"
#include "result.h"

/* Source ports of SNATed connections: above Linux's default ephemeral range, so the node's own sockets never collide. */
#define TP_SNAT_PORT_MIN 61000
#define TP_SNAT_PORT_COUNT 4536
#define TP_SNAT_TRIES 8

/* The node's address of p's family on the uplink (the SNAT source), or NULL when it has none. */
static __always_inline const __u8 *tp_node_addr(const struct tp_config *cfg, __u8 family, __u8 *buf)
{
	__builtin_memset(buf, 0, 16);
	if (family == TP_FAMILY_IPV4) {
		__u32 a;

		__builtin_memcpy(&a, cfg->node_addr4, 4);
		if (!a)
			return NULL;
		__builtin_memcpy(buf, cfg->node_addr4, 4);
		return buf;
	}
	__builtin_memcpy(buf, cfg->node_addr6, 16);
	return tp_addr_fold(buf) ? buf : NULL;
}

/* Packets of a known connection from outside: as its first packet was translated. */
static __always_inline struct tp_result tp_external_dnat(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_ct_entry *e,
							 __u32 reason)
{
	if (tp_nat_dst(skb, p, e->backend_addr, e->backend_port))
		return tp_decided(TP_DROP_NAT);
	if (!(e->flags & TP_CT_F_SNAT))
		return tp_result_of(reason, TP_ACT_REWRITE);
	if (tp_nat_src(skb, p, e->nat_addr, e->nat_port))
		return tp_decided(TP_DROP_NAT);
	return tp_result_to(reason, TP_ACT_REDIRECT, skb->ifindex);
}

/* A SNATed connection's reply, from the other node's backend: back to the client, from the frontend. */
static __always_inline struct tp_result tp_external_unsnat(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_ct_entry *e)
{
	if (tp_nat_src(skb, p, e->frontend_addr, e->frontend_port) || tp_nat_dst(skb, p, e->nat_addr, e->nat_port))
		return tp_decided(TP_DROP_NAT);
	return tp_result_to(TP_PASS_REPLY, TP_ACT_REDIRECT, skb->ifindex);
}

/*
 * Records the reverse entry of a SNATed connection under the first free port (BPF_NOEXIST
 * on node address:port ↔ backend); returns the port, or 0 when every try was taken.
 */
static __always_inline __u16 tp_snat_claim(struct tp_ct_key *rk, const struct tp_ct_entry *rev, __u32 hash)
{
#pragma unroll
	for (int i = 0; i < TP_SNAT_TRIES; i++) {
		__u16 port = bpf_htons(TP_SNAT_PORT_MIN + (hash + i * 2654435761u) % TP_SNAT_PORT_COUNT);

		rk->pod_port = port;
		if (bpf_map_update_elem(&tp_ct_v2, rk, rev, BPF_NOEXIST) == 0)
			return port;
	}
	return 0;
}

/* A new connection from outside to frontend svc; *e is room for its entries. */
static __always_inline struct tp_result tp_external_new(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_ct_key *k,
							const struct tp_svc_value *svc, __u64 now, struct tp_ct_entry *e)
{
	const struct tp_config *cfg = tp_config();
	struct tp_ct_key twin;
	struct tp_xlate x = {};
	struct tp_ip_key ep = { .family = p->family };
	__u8 node[16];
	const __u8 *src;

	if (!tp_lb_pick(p, svc, now, &x)) {
		if (svc->empty == TP_SVC_EMPTY_DROP)
			return tp_decided(TP_DROP_NO_LOCAL_BACKEND);
		if (tp_reply_refuse(skb, p))
			return tp_decided(TP_DROP_NAT);
		return tp_result_to(TP_REJECT_NO_BACKEND, TP_ACT_BOUNCE, skb->ifindex);
	}
	tp_ct_entry_init(e, p, TP_DIR_INGRESS, now, 0);
	e->flags |= TP_CT_F_EXTERNAL;
	e->service_id = svc->service_id;
	e->backend_id = x.id;
	__builtin_memcpy(e->frontend_addr, p->daddr, 16);
	e->frontend_port = p->dport;
	__builtin_memcpy(e->backend_addr, x.addr, 16);
	e->backend_port = x.port;
	__builtin_memcpy(ep.addr, x.addr, 16);
	if (svc->affinity_timeout_s)
		tp_lb_remember(svc->service_id, svc->affinity_scope, p->family, p->saddr, x.id, now);

	if (bpf_map_lookup_elem(&tp_endpoints_v1, &ep)) {
		/* A backend on this node: the client's address is kept. */
		e->nat = TP_CT_NAT_DNAT;
		e->flags |= tp_ct_affinity_flags(svc);
		tp_ct_create(k, e, NULL);
		tp_ct_twin_key(&twin, k, e);
		e->nat = TP_CT_NAT_RNAT;
		e->flags &= ~(TP_CT_F_AFFINITY | TP_CT_F_AFFINITY_LOCAL);
		tp_ct_create(&twin, e, NULL);
		if (tp_nat_dst(skb, p, x.addr, x.port))
			return tp_decided(TP_DROP_NAT);
		return tp_result_of(TP_PASS_EXTERNAL, TP_ACT_REWRITE);
	}

	/* Another node's backend: SNAT to this node, so the replies come back through it. */
	if (!cfg || !(src = tp_node_addr(cfg, p->family, node)))
		return tp_decided(TP_DROP_NAT);
	e->flags |= TP_CT_F_SNAT;
	e->nat = TP_CT_NAT_RNAT;
	e->opened = TP_DIR_EGRESS; /* the translated packet leaves the node */
	__builtin_memcpy(e->nat_addr, p->saddr, 16); /* the client, where replies go */
	e->nat_port = p->sport;
	twin = *k;
	__builtin_memcpy(twin.pod_addr, src, 16);
	__builtin_memcpy(twin.peer_addr, x.addr, 16);
	twin.peer_port = x.port;
	__u16 port = tp_snat_claim(&twin, e, tp_flow_hash(p, cfg->lb_seed));
	if (!port)
		return tp_decided(TP_DROP_NAT);
	e->nat = TP_CT_NAT_DNAT;
	e->opened = TP_DIR_INGRESS;
	e->flags |= tp_ct_affinity_flags(svc);
	__builtin_memcpy(e->nat_addr, src, 16); /* the source the connection leaves with */
	e->nat_port = port;
	tp_ct_create(k, e, NULL);
	if (tp_nat_dst(skb, p, x.addr, x.port) || tp_nat_src(skb, p, src, port))
		return tp_decided(TP_DROP_NAT);
	return tp_result_to(TP_PASS_EXTERNAL, TP_ACT_REDIRECT, skb->ifindex);
}

/*
 * A packet arriving on the uplink. Only one addressed to this node (a NodePort, or the
 * reply to a SNATed connection) or to a frontend (an external or load balancer IP, which
 * no ipcache entry names) can be service traffic: a packet to a pod or another node —
 * pod-to-pod traffic from other nodes above all — is handed on after one ipcache lookup,
 * and one to an unknown address after one more (the frontend's), never touching conntrack.
 */
static __always_inline struct tp_result tp_uplink_in(struct __sk_buff *skb, const struct tp_packet *p, struct tp_ct_entry *room)
{
	__u64 now = bpf_ktime_get_coarse_ns();
	struct tp_ct_hit hit = {};
	const struct tp_svc_value *svc = NULL;
	struct tp_ct_key key;
	__u32 to = tp_identity_of(p->family, p->daddr);
	bool to_node = to == TP_IDENTITY_HOST;

	if (tp_identity_in_pods(to) || tp_identity_is_remote_node(to))
		return tp_decided(TP_PASS_UPLINK);
	if (!to_node) {
		svc = tp_lb_frontend(p, TP_SVC_FROM_OUTSIDE, false);
		if (!svc)
			return tp_decided(TP_PASS_UPLINK);
	}
	tp_ct_key_of(&key, p, TP_CT_EP_UPLINK, TP_DIR_INGRESS);
	switch (tp_ct_lookup(&key, p, TP_DIR_INGRESS, now, &hit)) {
	case TP_CT_ESTABLISHED:
		if (hit.entry->nat != TP_CT_NAT_DNAT)
			return tp_decided(TP_PASS_UPLINK);
		if (tp_lb_established(hit.entry, p, hit.refreshed, now))
			return tp_external_dnat(skb, p, hit.entry, TP_PASS_ESTABLISHED);
		break; /* its backend stopped serving it: choose again */
	case TP_CT_REPLY:
		if (hit.entry->nat == TP_CT_NAT_RNAT && (hit.entry->flags & TP_CT_F_SNAT))
			return tp_external_unsnat(skb, p, hit.entry);
		return tp_decided(TP_PASS_UPLINK);
	default:
		break;
	}
	if (p->frag == TP_FRAG_LATER)
		return tp_decided(TP_PASS_UPLINK); /* the first fragment of a translated datagram made an entry */
	if (!svc)
		svc = tp_lb_frontend(p, TP_SVC_FROM_OUTSIDE, true);
	if (!svc)
		return tp_decided(TP_PASS_UPLINK);
	return tp_external_new(skb, p, &key, svc, now, room);
}

/*
 * A local backend's reply to a client that came through the uplink (from outside, or
 * from another node's own address) gets the frontend back as its source. Called by
 * tp_from_pod for a reply on an entry with TP_CT_F_OUTSIDE, so no other packet pays for
 * the lookup (and the uplink needs no egress program).
 */
static __always_inline struct tp_result tp_external_reply(struct __sk_buff *skb, const struct tp_packet *p, __u64 now)
{
	const struct tp_config *cfg;
	struct tp_ct_hit hit = {};
	struct tp_ct_key key;

	tp_ct_key_of(&key, p, TP_CT_EP_UPLINK, TP_DIR_EGRESS);
	if (tp_ct_lookup(&key, p, TP_DIR_EGRESS, now, &hit) != TP_CT_REPLY || hit.entry->nat != TP_CT_NAT_RNAT ||
	    (hit.entry->flags & TP_CT_F_SNAT))
		return tp_decided(TP_PASS_REPLY);
	if (tp_nat_src(skb, p, hit.entry->frontend_addr, hit.entry->frontend_port))
		return tp_decided(TP_DROP_NAT);
	/*
	 * Out of the uplink from here: coming from the node's own address (a NodePort), the
	 * reply would be a martian to the node's input routing.
	 */
	cfg = tp_config();
	if (!cfg || !cfg->uplink_ifindex)
		return tp_decided(TP_DROP_NAT);
	return tp_result_to(TP_PASS_REPLY, TP_ACT_REDIRECT, cfg->uplink_ifindex);
}

#endif
