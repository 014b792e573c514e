/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The delivery stage: a packet arriving on the uplink for a pod of this node is judged
 * right there, by the same pipeline its veth's tp_to_pod would run, and handed straight
 * into the pod's namespace (bpf_redirect_peer) rather than routed by the node's stack to
 * the veth. That saves, per packet, the node's forwarding pass, one veth crossing (with
 * its backlog queue) and one program run (Cilium's model). It is still a routing hop:
 * the TTL drops by one, as the node's forwarding would drop it; a packet whose TTL runs
 * out goes the stack's way untouched (which answers it), and whatever this stage leaves
 * alone meets tp_to_pod on the veth as before. Delivered packets do not see the node's
 * netfilter FORWARD and POSTROUTING hooks (as with Cilium; a stateful host firewall then
 * sees one direction of a cross-node connection only), nor the pod veth's egress qdisc
 * and any tc program after ours there. A new connection from the uplink with this
 * node's own address or one of its pods' as source is dropped (TP_DROP_INVALID_SOURCE):
 * the node's stack would have dropped it as a martian.
 *
 * The sending side's mirror, a pod's packets for another node's pods sent out of the
 * uplink from tc, is lib/forward.h.
 */
#ifndef TP_LIB_DELIVER_H
#define TP_LIB_DELIVER_H

#include <stdbool.h>

#include "endpoint.h"
#include "hop.h"
#include "maps.h"
#include "parse.h"
#include "result.h"

/*
 * The local pod a packet on the uplink is to be delivered to, or NULL: a packet whose TTL
 * (hop limit, read by the parser) runs out here goes the stack's way untouched (it
 * answers with ICMP time exceeded).
 */
static __always_inline const struct tp_endpoint *tp_delivery_target(const struct tp_packet *p)
{
	return p->ttl > 1 ? tp_local_endpoint(p->family, p->daddr) : NULL;
}

/* Turns pipeline result r for ep's packet, arrived on the uplink, into its delivery into the pod, where it may go. */
static __always_inline struct tp_result tp_deliver(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_endpoint *ep,
						   struct tp_result r)
{
	if (!tp_goes_on(&r))
		return r;
	if (tp_hop(skb, p))
		return tp_decided(TP_DROP_NAT); /* a rewrite that failed half way: never deliver it */
	return tp_under_rule(tp_result_to(r.reason, TP_ACT_DELIVER, ep->ifindex), r.rule_id);
}

#endif
