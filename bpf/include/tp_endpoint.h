/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_ENDPOINT_H
#define TP_ENDPOINT_H

#include "tp_addr.h"

/*
 * tp_endpoints_v1: a local pod's address (struct tp_ip_key) → what its veth program needs.
 *   id:        endpoint id; the pod's policy entries carry it (the agent uses the
 *              host-side veth ifindex, unique on a node)
 *   identity:  the pod's security identity
 *   ifindex:   host-side veth; a packet naming this address on another interface is
 *              dropped (spoofing, or a routing mistake)
 *   ingress_default / egress_default: verdict for a new connection no policy entry
 *              matches; TP_VERDICT_DENY once a policy isolates the pod in that direction
 *   policy_gen: moves (by one, wrapping) whenever what the pod's connections were judged
 *              by may have changed: its policy entries or defaults, or the identity of
 *              any peer address. A connection judged under another generation (its
 *              conntrack entry's policy_gen) is judged again at its next packet; what the
 *              policies deny now drops from that packet on. Written 0 by earlier agents
 *              (then the padding), as conntrack entries are: nothing to re-judge.
 */
struct tp_endpoint {
	__u32 id;
	__u32 identity;
	__u32 ifindex;
	__u8 ingress_default;
	__u8 egress_default;
	__u16 policy_gen;
};

#endif
