/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The stages after the endpoint is known, in DESIGN.md's order: conntrack → policy →
 * conntrack create → verdict. A packet of a known connection costs one lookup; only a
 * new connection reaches the policy stage.
 */
#ifndef TP_LIB_PIPELINE_H
#define TP_LIB_PIPELINE_H

#include "conntrack.h"
#include "policy.h"
#include "result.h"

/* Verdict for an IP packet on endpoint ep's veth. */
static __always_inline struct tp_result tp_pod_flow(const struct tp_packet *p, const struct tp_endpoint *ep, __u8 dir)
{
	__u64 now = bpf_ktime_get_coarse_ns(); /* tick resolution is plenty for lifetimes of seconds */
	struct tp_ct_entry *known = NULL;
	struct tp_ct_entry fresh;
	struct tp_ct_key key;
	__u32 identity, reason, rule_id;

	tp_ct_key_of(&key, p, ep->id, dir);
	switch (tp_ct_lookup(&key, p, dir, now, &known)) {
	case TP_CT_REPLY:
		return tp_decided(TP_PASS_REPLY);
	case TP_CT_ESTABLISHED:
		return tp_decided(TP_PASS_ESTABLISHED);
	default:
		break;
	}

	identity = tp_identity_of(p->family, dir == TP_DIR_INGRESS ? p->saddr : p->daddr);
	reason = tp_policy_decide(ep, identity, dir, p->protocol, p->dport, &rule_id);
	if (reason >= TP_DROP_POLICY)
		return tp_decided(reason);
	tp_ct_entry_init(&fresh, p, dir, now, rule_id);
	tp_ct_create(&key, &fresh);
	return tp_decided(reason);
}

#endif
