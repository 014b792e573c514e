/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The policy stage: the peer's identity (ipcache) and the endpoint's verdict for it.
 * Everything was resolved by the agent when it compiled the policies; here are only
 * lookups (see tp_policy.h for why two suffice).
 */
#ifndef TP_LIB_POLICY_H
#define TP_LIB_POLICY_H

#include <stdbool.h>

#include "maps.h"
#include "parse.h"

/* Identity of a peer address: exact match first, then CIDRs, else world. */
static __always_inline __u32 tp_identity_of(__u8 family, const __u8 *addr)
{
	struct tp_ip_key key = { .family = family };
	struct tp_ipcidr_key cidr = { .family = family };
	struct tp_ipcache_value *v;

	__builtin_memcpy(key.addr, addr, 16);
	v = bpf_map_lookup_elem(&tp_ipcache_v1, &key);
	if (v)
		return v->identity;
	cidr.prefixlen = TP_IPCIDR_PREFIX_BASE + (family == TP_FAMILY_IPV4 ? 32 : 128);
	__builtin_memcpy(cidr.addr, addr, 16);
	v = bpf_map_lookup_elem(&tp_ipcidr_v1, &cidr);
	if (v)
		return v->identity;
	return TP_IDENTITY_WORLD;
}

static __always_inline bool tp_identity_is_local_class(__u32 identity, __u32 flag)
{
	return identity >= TP_IDENTITY_LOCAL && (identity & flag);
}

/*
 * Whether an identity names a pod, or an address in a pod range (UNMANAGED), label
 * identity or local class alike. A local class of addresses outside the pod ranges (an
 * ipBlock's external addresses) is no pod, and may be a service frontend.
 */
static __always_inline bool tp_identity_in_pods(__u32 identity)
{
	if (identity >= TP_IDENTITY_LOCAL)
		return identity & TP_IDENTITY_LOCAL_IN_PODS;
	return identity >= TP_IDENTITY_FIRST_ALLOCATED || identity == TP_IDENTITY_UNMANAGED;
}

/* Whether an identity names another node's address (reserved, or its local class). */
static __always_inline bool tp_identity_is_remote_node(__u32 identity)
{
	return identity == TP_IDENTITY_REMOTE_NODE || tp_identity_is_local_class(identity, TP_IDENTITY_LOCAL_NODE);
}

/* The endpoint's entry for this peer and port: the peer's own identity first, then any peer. */
static __always_inline const struct tp_policy_value *tp_policy_lookup(__u32 ep, __u32 identity, __u8 dir, __u8 protocol,
								      __u16 dport)
{
	struct tp_policy_key key = {
		.prefixlen = TP_POLICY_PREFIX_FULL,
		.endpoint_id = ep,
		.identity = identity,
		.direction = dir,
		.protocol = protocol,
		.dport = dport,
	};
	const struct tp_policy_value *v = bpf_map_lookup_elem(&tp_policy_v1, &key);

	if (v)
		return v;
	key.identity = TP_IDENTITY_ANY;
	return bpf_map_lookup_elem(&tp_policy_v1, &key);
}

/* The reason a verdict gives, by a rule or by the endpoint's default; audit passes. */
static __always_inline __u32 tp_reason_of_verdict(__u8 verdict, bool by_default)
{
	if (verdict == TP_VERDICT_ALLOW)
		return by_default ? TP_PASS_DEFAULT : TP_PASS_POLICY;
	if (verdict == TP_VERDICT_AUDIT)
		return by_default ? TP_AUDIT_POLICY_DEFAULT : TP_AUDIT_POLICY;
	if (verdict == TP_VERDICT_CLOSED)
		return TP_DROP_FAIL_CLOSED; /* the endpoint's entries did not fit: nothing is admitted */
	return by_default ? TP_DROP_POLICY_DEFAULT : TP_DROP_POLICY;
}

/*
 * Verdict for a new connection of endpoint ep with a peer of this identity, to dport:
 * a pass reason (with the deciding rule in *rule_id) or a drop reason.
 */
static __always_inline __u32 tp_policy_decide(const struct tp_endpoint *ep, __u32 identity, __u8 dir, __u8 protocol,
					      __u16 dport, __u32 *rule_id)
{
	const struct tp_policy_value *entry = tp_policy_lookup(ep->id, identity, dir, protocol, dport);
	__u8 verdict;

	if (entry) {
		/* Rule 0 is the endpoint's default: an entry may carry it where it must outrank a
		 * wildcard entry (a peer a Pass hands to the default), and then counts as it. */
		*rule_id = entry->rule_id;
		return tp_reason_of_verdict(entry->verdict, entry->rule_id == 0);
	}
	*rule_id = 0;
	verdict = dir == TP_DIR_INGRESS ? ep->ingress_default : ep->egress_default;
	return tp_reason_of_verdict(verdict, true);
}

#endif
