// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcplane datapath for a pod's host-side veth.
 *
 *   tp_from_pod  tc ingress of the host-side veth: packets the pod sends (its egress)
 *   tp_to_pod    tc egress of the host-side veth: packets the pod receives (its ingress)
 *
 * For an IP packet: find the local endpoint by the pod's address, give a fragment the
 * ports of its datagram's first fragment (lib/frag.h), let conntrack pass packets of
 * connections already allowed (replies included), otherwise resolve the peer's
 * identity through the ipcache and look the verdict up in the endpoint's policy
 * entries. Every packet is counted under one reason (tp_reasons.h).
 *
 * Passing returns TC_ACT_UNSPEC (TCX_NEXT): programs of other tc users attached after
 * ours still run, on tcx and on clsact alike. Dropping returns TC_ACT_SHOT.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lib/config.h"
#include "lib/conntrack.h"
#include "lib/frag.h"
#include "lib/maps.h"
#include "lib/metrics.h"
#include "lib/parse.h"
#include "lib/policy.h"

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
	enum tp_policy_prefix policy_prefix;
	enum tp_ipcidr_prefix ipcidr_prefix;
	enum tp_metrics_size metrics_size;
} tp_btf_anchor __attribute__((used));

/* Verdict for an IP packet on endpoint ep's veth; returns the reason. */
static __always_inline __u32 tp_enforce(const struct tp_packet *p, const struct tp_endpoint *ep,
					__u8 dir)
{
	const struct tp_policy_value *entry;
	__u64 now = bpf_ktime_get_coarse_ns(); /* tick resolution is plenty for lifetimes of seconds */
	__u32 identity;
	__u8 verdict;

	switch (tp_ct_lookup(p, ep->id, dir, now)) {
	case TP_CT_REPLY:
		return TP_PASS_REPLY;
	case TP_CT_ESTABLISHED:
		return TP_PASS_ESTABLISHED;
	default:
		break;
	}

	identity = tp_identity_of(p->family, dir == TP_DIR_INGRESS ? p->saddr : p->daddr);
	entry = tp_policy_lookup(ep->id, identity, dir, p);
	if (entry) {
		if (entry->verdict != TP_VERDICT_ALLOW)
			return TP_DROP_POLICY;
		tp_ct_create(p, ep->id, dir, now, entry->rule_id);
		return TP_PASS_POLICY;
	}
	verdict = dir == TP_DIR_INGRESS ? ep->ingress_default : ep->egress_default;
	if (verdict != TP_VERDICT_ALLOW)
		return TP_DROP_POLICY_DEFAULT;
	tp_ct_create(p, ep->id, dir, now, 0);
	return TP_PASS_DEFAULT;
}

static __always_inline int tp_handle(struct __sk_buff *skb, __u8 dir)
{
	struct tp_packet p = {};
	const struct tp_endpoint *ep;
	struct tp_ip_key key = {};
	__u32 reason;

	reason = tp_parse(skb, &p);
	if (reason)
		goto out;

	/* The pod's own address: the source of what it sends, the destination of what it receives. */
	key.family = p.family;
	__builtin_memcpy(key.addr, dir == TP_DIR_EGRESS ? p.saddr : p.daddr, 16);
	ep = bpf_map_lookup_elem(&tp_endpoints_v1, &key);
	if (!ep || ep->ifindex != skb->ifindex) {
		reason = dir == TP_DIR_EGRESS ? TP_DROP_INVALID_SOURCE : TP_DROP_UNKNOWN_DEST;
		goto out;
	}
	if (p.frag == TP_FRAG_LATER) {
		reason = tp_frag_lookup(&p);
		if (reason)
			goto out;
	}
	reason = tp_enforce(&p, ep, dir);
	if (p.frag == TP_FRAG_FIRST && reason < TP_DROP_POLICY)
		tp_frag_record(&p);
out:
	tp_count(skb, dir, reason);
	return reason < TP_DROP_POLICY ? TC_ACT_UNSPEC : TC_ACT_SHOT;
}

SEC("tc")
int tp_from_pod(struct __sk_buff *skb)
{
	return tp_handle(skb, TP_DIR_EGRESS);
}

SEC("tc")
int tp_to_pod(struct __sk_buff *skb)
{
	return tp_handle(skb, TP_DIR_INGRESS);
}
