/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The forwarding stage, the sending side's mirror of lib/deliver.h: a pod's packet for
 * a pod on another node leaves through the node's uplink straight from tc
 * (bpf_redirect_neigh to its next hop) instead of crossing the node's stack (the input
 * route, ip_forward, netfilter FORWARD and POSTROUTING, ip_output).
 *
 * The next hop is learnt once per connection, when its entry is made: a FIB lookup of
 * the peer as the node's forwarding would route it from the pod's veth (bpf_fib_lookup,
 * which also answers "forwarding disabled" when the node does not forward). Only a
 * route out of the uplink to a peer in the pod ranges is kept (tp_ct_entry.route, the
 * next hop in nat_addr); every later packet the pod sends on the connection then costs
 * no route lookup. (Routing every packet through the FIB from here was measured and not
 * kept: the lookup cost what the skipped forwarding saved; see README.) A connection
 * keeps its route for its life: a route to a pod range changes only when its node goes,
 * with the pods the connection could reach.
 *
 * What still goes the stack's way, as without this stage: a peer outside the pod ranges
 * (the node itself, the world, where masquerade rules may wait), anything the FIB sends
 * elsewhere than the uplink (a local pod), fragments, a packet whose TTL runs out here
 * (the stack answers it), one longer than the uplink's MTU (the stack answers "needs
 * fragmentation" or "packet too big"), and every packet of a connection whose entry was
 * made without a route (by an earlier build, or on a kernel that refused the lookup).
 * Forwarded packets do not see the node's netfilter FORWARD and POSTROUTING hooks, as
 * with Cilium's BPF host routing; those delivered into pods already did not.
 */
#ifndef TP_LIB_FORWARD_H
#define TP_LIB_FORWARD_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "hop.h"
#include "maps.h"
#include "parse.h"
#include "result.h"

#define TP_AF_INET 2
#define TP_AF_INET6 10
/* 0: no route is learnt, every packet goes the stack's way (the agent's --host-routing stack). */
const volatile __u8 tp_forward_on = 1;

/* No uplink's MTU is below this (IPv6's minimum link MTU): a shorter packet needs no MTU check. */
#define TP_FORWARD_SHORT 1280

/*
 * Learns, for the new connection entry e of pod address `pod`, the route of the pod's
 * packets to `peer` (p's family), as the node would forward them from the pod's veth:
 * sets e->route and e->nat_addr when it is out of the uplink, else leaves them 0.
 */
static __always_inline void tp_route_learn(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_endpoint *ep,
					   const __u8 *pod, const __u8 *peer, struct tp_ct_entry *e)
{
	const struct tp_config *cfg = tp_config();
	struct bpf_fib_lookup *fib;
	__u32 zero = 0;

	_Static_assert(sizeof(*fib) <= sizeof(struct tp_scratch), "the lookup's parameters fit the scratch room");
	if (!tp_forward_on || !cfg || !cfg->uplink_ifindex)
		return;
	fib = bpf_map_lookup_elem(&tp_scratch_v1, &zero); /* 64 bytes the entry programs' stack cannot spare */
	if (!fib)
		return;
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->ifindex = ep->ifindex;
	fib->l4_protocol = p->protocol;
	if (p->family == TP_FAMILY_IPV4) {
		fib->family = TP_AF_INET;
		__builtin_memcpy(&fib->ipv4_src, pod, 4);
		__builtin_memcpy(&fib->ipv4_dst, peer, 4);
	} else {
		fib->family = TP_AF_INET6;
		__builtin_memcpy(fib->ipv6_src, pod, 16);
		__builtin_memcpy(fib->ipv6_dst, peer, 16);
	}
	if (bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS ||
	    fib->ifindex != cfg->uplink_ifindex)
		return;
	/* The lookup left the next hop (the gateway, or the peer on a connected route) in *_dst. */
	__builtin_memset(e->nat_addr, 0, 16);
	if (fib->family == TP_AF_INET) {
		__builtin_memcpy(e->nat_addr, &fib->ipv4_dst, 4);
		e->route = TP_CT_ROUTE_UPLINK4;
	} else {
		__builtin_memcpy(e->nat_addr, fib->ipv6_dst, 16);
		e->route = TP_CT_ROUTE_UPLINK6;
	}
}

/*
 * Sends pod packet p, which result r lets go on, out of the uplink to the next hop of
 * its connection's entry e, when e has one and nothing asks for the stack (above):
 * the TTL is taken down first, as the node's forwarding would. The redirect is set up
 * here (bpf_redirect_neigh) and the result says TP_ACT_FORWARD, which the entry
 * program returns as TC_ACT_REDIRECT. Otherwise r, unchanged.
 */
static __always_inline struct tp_result tp_forward(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_ct_entry *e,
						    struct tp_result r)
{
	struct bpf_redir_neigh nh = {};
	const struct tp_config *cfg;
	__u32 mtu = 0;

	if (!e->route || !tp_goes_on(&r) || p->frag != TP_FRAG_NONE || p->ttl <= 1)
		return r;
	cfg = tp_config();
	if (!cfg || !cfg->uplink_ifindex)
		return r;
	if (skb->len > TP_FORWARD_SHORT && bpf_check_mtu(skb, cfg->uplink_ifindex, &mtu, 0, 0))
		return r;
	if (e->route == TP_CT_ROUTE_UPLINK4) {
		nh.nh_family = TP_AF_INET;
		__builtin_memcpy(&nh.ipv4_nh, e->nat_addr, 4);
	} else {
		nh.nh_family = TP_AF_INET6;
		__builtin_memcpy(nh.ipv6_nh, e->nat_addr, 16);
	}
	if (tp_hop(skb, p))
		return tp_decided(TP_DROP_NAT); /* a header half rewritten: never send it */
	bpf_redirect_neigh(cfg->uplink_ifindex, &nh, sizeof(nh), 0);
	r.action = TP_ACT_FORWARD;
	r.ifindex = cfg->uplink_ifindex;
	return r;
}

#endif
