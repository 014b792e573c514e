// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcplane datapath.
 *
 *   tp_from_pod     tc ingress of a pod's host-side veth: packets the pod sends (its egress)
 *   tp_to_pod       tc egress of a pod's host-side veth: packets the pod receives (its ingress)
 *   tp_from_uplink  tc ingress of the node's uplink: NodePort and external traffic
 *                   arriving, and other nodes' traffic to local pods (delivered into them)
 * The uplink's egress carries no program: a local backend's reply to an outside client
 * gets its frontend back in tp_from_pod (earlier builds had tp_to_uplink there;
 * src/datapath/uplink-egress-retirement.ts takes it off).
 *
 * One pipeline per hook (DESIGN.md): parse (lib/parse.h) → endpoint (lib/endpoint.h) →
 * fragment (lib/frag.h) → conntrack, service translation, policy, conntrack create,
 * rewrite (lib/pipeline.h) → for a pod's packet to another node's pod, out of the uplink
 * (lib/forward.h) → verdict (lib/result.h), reported for `tcplane observe`
 * (lib/events.h), counted per reason and per policy rule (lib/metrics.h). A packet from the uplink for a
 * local pod runs the pod's ingress pipeline at the uplink and is delivered into the pod
 * (lib/deliver.h). Every packet is counted under one reason (tp_reasons.h).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/deliver.h"
#include "lib/endpoint.h"
#include "lib/events.h"
#include "lib/frag.h"
#include "lib/metrics.h"
#include "lib/parse.h"
#include "lib/pipeline.h"
#include "lib/result.h"
#include "lib/uplink.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Puts the shared enums (and the event record) into the object's BTF (types only reachable from inlined code
 * would not be), so the layout test can check src/datapath/constants.ts. Never read.
 */
const volatile struct tp_btf_anchor {
	enum tp_family family;
	enum tp_direction direction;
	enum tp_verdict verdict;
	enum tp_reserved_identity identity;
	enum tp_reason reason;
	enum tp_ct_flags ct_flags;
	enum tp_ct_nat ct_nat;
	enum tp_ct_route ct_route;
	enum tp_policy_prefix policy_prefix;
	enum tp_ipcidr_prefix ipcidr_prefix;
	enum tp_metrics_size metrics_size;
	enum tp_hook hook;
	enum tp_ct_endpoint ct_endpoint;
	enum tp_svc_origin svc_origin;
	enum tp_svc_empty svc_empty;
	enum tp_backend_state backend_state;
	enum tp_lb_limits lb_limits;
	enum tp_affinity_scope affinity_scope;
	enum tp_event_flags event_flags;
	struct tp_event event; /* only reserved in the ring buffer: no map declares it */
} tp_btf_anchor __attribute__((used));

/* A packet of local pod ep, once its endpoint is known: fragment → flow → fragment record. */
static __always_inline struct tp_result tp_pod_verdict(struct __sk_buff *skb, struct tp_packet *p, const struct tp_endpoint *ep,
						       __u8 dir, struct tp_ct_entry *room, bool via_uplink)
{
	struct tp_result r;
	__u32 reason;

	if (p->frag == TP_FRAG_LATER && (reason = tp_frag_lookup(p)))
		return tp_decided(reason);
	r = tp_pod_flow(skb, p, ep, dir, room, via_uplink);
	if (p->frag == TP_FRAG_FIRST && tp_goes_on(&r))
		tp_frag_record(p);
	return r;
}

static __always_inline int tp_pod_hook(struct __sk_buff *skb, __u8 dir)
{
	__u32 len = skb->len; /* as it arrived: counted before any rewrite */
	struct tp_packet p = {};
	struct tp_ct_entry room; /* a new connection's entries are built here */
	const struct tp_endpoint *ep = NULL;
	struct tp_result r;
	__u32 reason;

	reason = tp_parse(skb, &p);
	if (reason) {
		r = tp_decided(reason);
		goto out;
	}
	ep = tp_endpoint_of(skb, &p, dir, &reason);
	r = ep ? tp_pod_verdict(skb, &p, ep, dir, &room, false) : tp_decided(reason);
out:
	tp_event_unreported(&r, &p, ep, dir, dir); /* the pod hooks equal the directions */
	tp_count(dir == TP_DIR_INGRESS ? TP_HOOK_TO_POD : TP_HOOK_FROM_POD, r.reason, len);
	tp_count_rule(r.rule_id, len);
	return tp_verdict(&r);
}

/*
 * The uplink carries the node's own traffic too: whatever is not service traffic, even
 * what a pod's veth would refuse (non-IP, malformed), passes untouched. A packet for a
 * local pod is judged here as the pod's ingress (counted as tp_to_pod's) and delivered
 * into it (lib/deliver.h).
 */
static __always_inline int tp_uplink_hook(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	struct tp_packet p = {};
	struct tp_result r = tp_decided(TP_PASS_UPLINK);
	struct tp_ct_entry room; /* a new connection's entries are built here */
	const struct tp_endpoint *ep = NULL;
	__u8 hook = TP_HOOK_FROM_UPLINK;

	if (tp_parse(skb, &p))
		goto out;
	if ((ep = tp_delivery_target(&p))) {
		hook = TP_HOOK_TO_POD;
		r = tp_deliver(skb, &p, ep, tp_pod_verdict(skb, &p, ep, TP_DIR_INGRESS, &room, true));
		goto out;
	}
	if (p.frag == TP_FRAG_LATER && tp_frag_lookup(&p))
		goto out;
	if (p.protocol != IPPROTO_TCP && p.protocol != IPPROTO_UDP && p.protocol != IPPROTO_SCTP)
		goto out;
	r = tp_uplink_in(skb, &p, &room);
	if (p.frag == TP_FRAG_FIRST && r.action != TP_ACT_PASS && r.action != TP_ACT_DROP)
		tp_frag_record(&p); /* its later fragments follow the translation */
out:
	tp_event_unreported(&r, &p, ep, TP_DIR_INGRESS, hook);
	tp_count(hook, r.reason, len);
	tp_count_rule(r.rule_id, len);
	return tp_verdict(&r);
}

SEC("tc")
int tp_from_pod(struct __sk_buff *skb)
{
	return tp_pod_hook(skb, TP_DIR_EGRESS);
}

SEC("tc")
int tp_to_pod(struct __sk_buff *skb)
{
	return tp_pod_hook(skb, TP_DIR_INGRESS);
}

SEC("tc")
int tp_from_uplink(struct __sk_buff *skb)
{
	return tp_uplink_hook(skb);
}
