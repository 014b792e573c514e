// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcplane datapath.
 *
 *   tp_from_pod     tc ingress of a pod's host-side veth: packets the pod sends (its egress)
 *   tp_to_pod       tc egress of a pod's host-side veth: packets the pod receives (its ingress)
 *   tp_from_uplink  tc ingress of the node's uplink: NodePort and external traffic arriving
 *   tp_to_uplink    tc egress of the node's uplink: local backends' replies leaving
 *
 * One pipeline per hook (DESIGN.md): parse (lib/parse.h) → endpoint (lib/endpoint.h) →
 * fragment (lib/frag.h) → conntrack, service translation, policy, conntrack create,
 * rewrite (lib/pipeline.h) → verdict (lib/result.h). Every packet is counted under one
 * reason (tp_reasons.h).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/endpoint.h"
#include "lib/frag.h"
#include "lib/metrics.h"
#include "lib/parse.h"
#include "lib/pipeline.h"
#include "lib/result.h"
#include "lib/uplink.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Puts the shared enums into the object's BTF (types only reachable from inlined code
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
} tp_btf_anchor __attribute__((used));

static __always_inline int tp_pod_hook(struct __sk_buff *skb, __u8 dir)
{
	__u32 len = skb->len; /* as it arrived: counted before any rewrite */
	struct tp_packet p = {};
	const struct tp_endpoint *ep;
	struct tp_result r;
	__u32 reason;

	reason = tp_parse(skb, &p);
	if (reason) {
		r = tp_decided(reason);
		goto out;
	}
	ep = tp_endpoint_of(skb, &p, dir, &reason);
	if (!ep || (p.frag == TP_FRAG_LATER && (reason = tp_frag_lookup(&p)))) {
		r = tp_decided(reason);
		goto out;
	}
	r = tp_pod_flow(skb, &p, ep, dir);
	if (p.frag == TP_FRAG_FIRST && (r.action == TP_ACT_PASS || r.action == TP_ACT_REWRITE))
		tp_frag_record(&p);
out:
	tp_count(dir == TP_DIR_INGRESS ? TP_HOOK_TO_POD : TP_HOOK_FROM_POD, r.reason, len);
	return tp_verdict(&r);
}

/*
 * The uplink carries the node's own traffic too: whatever is not service traffic, even
 * what a pod's veth would refuse (non-IP, malformed), passes untouched.
 */
static __always_inline int tp_uplink_hook(struct __sk_buff *skb, __u8 dir)
{
	__u32 len = skb->len;
	struct tp_packet p = {};
	struct tp_result r = tp_decided(TP_PASS_UPLINK);

	if (tp_parse(skb, &p) || (p.frag == TP_FRAG_LATER && tp_frag_lookup(&p)))
		goto out;
	if (p.protocol != IPPROTO_TCP && p.protocol != IPPROTO_UDP && p.protocol != IPPROTO_SCTP)
		goto out;
	r = dir == TP_DIR_INGRESS ? tp_uplink_in(skb, &p) : tp_uplink_out(skb, &p);
	if (p.frag == TP_FRAG_FIRST && r.action != TP_ACT_PASS && r.action != TP_ACT_DROP)
		tp_frag_record(&p); /* its later fragments follow the translation */
out:
	tp_count(dir == TP_DIR_INGRESS ? TP_HOOK_FROM_UPLINK : TP_HOOK_TO_UPLINK, r.reason, len);
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
	return tp_uplink_hook(skb, TP_DIR_INGRESS);
}

SEC("tc")
int tp_to_uplink(struct __sk_buff *skb)
{
	return tp_uplink_hook(skb, TP_DIR_EGRESS);
}
