/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The delivery stage: a packet arriving on the uplink for a pod of this node is judged
 * right there, by the same pipeline its veth's tp_to_pod would run, and handed straight
 * into the pod's namespace (bpf_redirect_peer) rather than routed by the node's stack to
 * the veth. That saves, per packet, the node's forwarding pass, one veth crossing (with
 * its backlog queue) and one program run (Cilium's model). It is still a routing hop:
 * the TTL drops by one, as the node's forwarding would drop it; a packet whose TTL runs
 * out goes the stack's way (which answers it) and meets tp_to_pod on the veth, as does
 * whatever this stage leaves alone. The node's netfilter FORWARD and POSTROUTING hooks
 * do not see delivered packets (as with Cilium).
 *
 * (Sending a pod's packets out of the uplink the same way, after a bpf_fib_lookup, was
 * measured and not kept: the lookup cost what the skipped forwarding saved, and a
 * connection through it was slower.)
 */
#ifndef TP_LIB_DELIVER_H
#define TP_LIB_DELIVER_H

#include <stdbool.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>

#include "maps.h"
#include "parse.h"
#include "result.h"

/* The local pod a packet on the uplink is addressed to, or NULL. */
static __always_inline const struct tp_endpoint *tp_local_pod(const struct tp_packet *p)
{
	struct tp_ip_key key = { .family = p->family };

	__builtin_memcpy(key.addr, p->daddr, 16);
	return bpf_map_lookup_elem(&tp_endpoints_v1, &key);
}

/* The routing hop: TTL (hop limit) down by one. false when it would reach 0 (the stack answers that). */
static __always_inline bool tp_hop(struct __sk_buff *skb, const struct tp_packet *p)
{
	__u32 off = p->l3_off + (p->family == TP_FAMILY_IPV4 ? offsetof(struct iphdr, ttl) : offsetof(struct ipv6hdr, hop_limit));
	__u8 ttl, next;

	if (bpf_skb_load_bytes(skb, off, &ttl, 1) || ttl <= 1)
		return false;
	next = ttl - 1;
	/* The IPv4 checksum covers TTL as the high byte of its 16-bit word with the protocol. */
	if (p->family == TP_FAMILY_IPV4 &&
	    bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check), bpf_htons((__u16)ttl << 8), bpf_htons((__u16)next << 8), 2))
		return false;
	return bpf_skb_store_bytes(skb, off, &next, 1, 0) == 0;
}

/* Turns pipeline result r for ep's packet, arrived on the uplink, into its delivery into the pod, where it may go. */
static __always_inline struct tp_result tp_deliver(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_endpoint *ep,
						   struct tp_result r)
{
	if (!tp_goes_on(&r) || !tp_hop(skb, p))
		return r;
	return tp_result_to(r.reason, TP_ACT_DELIVER, ep->ifindex);
}

#endif
