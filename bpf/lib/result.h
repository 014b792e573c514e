/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one result every pipeline stage returns: why (a reason of tp_reasons.h, counted
 * in the metrics) and what to do with the packet. The entry programs turn it into a tc
 * verdict in one place (tp_verdict).
 */
#ifndef TP_LIB_RESULT_H
#define TP_LIB_RESULT_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "../include/tp_reasons.h"

enum tp_action {
	TP_ACT_PASS = 0,     /* hand the packet on unchanged */
	TP_ACT_DROP = 1,     /* drop it */
	TP_ACT_REWRITE = 2,  /* rewritten in place (NAT), then handed on */
	TP_ACT_REPLY = 3,    /* turned into an answer to its sender (TCP RST, ICMP error): back to the pod */
	TP_ACT_REDIRECT = 4, /* routed out of `ifindex` by the FIB (bypassing the stack) */
	TP_ACT_BOUNCE = 5,   /* turned into an answer to its sender and sent back out of `ifindex`, where it came in */
	TP_ACT_DELIVER = 6,  /* judged for a pod and handed straight into it: the peer of its veth `ifindex` */
	TP_ACT_FORWARD = 7,  /* a pod's packet sent out of the uplink `ifindex` to its connection's next hop (lib/forward.h) */
};

struct tp_result {
	__u32 reason;
	__u32 ifindex; /* TP_ACT_REPLY, TP_ACT_REDIRECT, TP_ACT_BOUNCE, TP_ACT_DELIVER, TP_ACT_FORWARD */
	__u32 rule_id; /* the policy rule that governs the packet's connection, counted per rule (0: none) */
	__u8 action;
	__u8 reported; /* a verdict event went out for it already (lib/events.h) */
};

static __always_inline struct tp_result tp_result_of(__u32 reason, __u8 action)
{
	struct tp_result r = { .reason = reason, .action = action };
	return r;
}

/* An action that sends the packet out of (or into the peer of) ifindex. */
static __always_inline struct tp_result tp_result_to(__u32 reason, __u8 action, __u32 ifindex)
{
	struct tp_result r = { .reason = reason, .action = action, .ifindex = ifindex };
	return r;
}

/* r, governed by policy rule rule_id (its packets and bytes are counted under it). */
static __always_inline struct tp_result tp_under_rule(struct tp_result r, __u32 rule_id)
{
	r.rule_id = rule_id;
	return r;
}

/* Whether r lets the packet go on its way (unchanged or rewritten). */
static __always_inline int tp_goes_on(const struct tp_result *r)
{
	return r->action == TP_ACT_PASS || r->action == TP_ACT_REWRITE;
}

/* A final reason alone: passes below TP_DROP_POLICY, drops from there. */
static __always_inline struct tp_result tp_decided(__u32 reason)
{
	return tp_result_of(reason, reason < TP_DROP_POLICY ? TP_ACT_PASS : TP_ACT_DROP);
}

/*
 * The tc verdict. Passing returns TC_ACT_UNSPEC (TCX_NEXT): programs of other tc users
 * attached after ours still run, on tcx and on clsact alike.
 */
static __always_inline int tp_verdict(const struct tp_result *r)
{
	switch (r->action) {
	case TP_ACT_PASS:
	case TP_ACT_REWRITE:
		return TC_ACT_UNSPEC;
	case TP_ACT_REPLY:
		/* Into the pod's own end of its veth, skipping our hook on the way (the answer
		 * is not a packet to judge). */
	case TP_ACT_DELIVER:
		/* Likewise: already judged for the pod (lib/deliver.h). */
		return bpf_redirect_peer(r->ifindex, 0);
	case TP_ACT_REDIRECT:
		return bpf_redirect_neigh(r->ifindex, NULL, 0, 0);
	case TP_ACT_FORWARD:
		/* Set up by tp_forward (bpf_redirect_neigh with the next hop), which is all the redirect needs. */
		return TC_ACT_REDIRECT;
	case TP_ACT_BOUNCE:
		return bpf_redirect(r->ifindex, 0);
	default:
		return TC_ACT_SHOT;
	}
}

#endif
