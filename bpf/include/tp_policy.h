/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_POLICY_H
#define TP_POLICY_H

#include "tp_common.h"

/*
 * tp_policy_v1: LPM trie, struct tp_policy_key → struct tp_policy_value.
 *
 * The bits after prefixlen are matched most significant first:
 *
 *   endpoint_id (32) | identity (32) | direction (8) | protocol (8) | dport (16, network order)
 *   |<------------------ always matched: 72 ------------------>|
 *                                      72: any protocol, any port
 *                                      80: this protocol, any port
 *                                      80 + n: this protocol, ports sharing dport's n leading bits
 *
 * A port range is written as the few prefixes that cover it exactly.
 * identity TP_IDENTITY_ANY (0) matches any peer. The datapath looks up the peer's own
 * identity first and TP_IDENTITY_ANY only on a miss, so the agent writes
 * identity-specific entries that already account for every wildcard entry that could
 * outrank them: the first hit is the resolved verdict, no rule list is walked.
 */
struct tp_policy_key {
	__u32 prefixlen;
	__u32 endpoint_id;
	__u32 identity;
	__u8 direction;
	__u8 protocol;
	__u16 dport;
};

enum tp_policy_prefix {
	TP_POLICY_PREFIX_ANY_PROTO = 72,
	TP_POLICY_PREFIX_ANY_PORT = 80,
	TP_POLICY_PREFIX_FULL = 96,
};

/*
 * verdict: TP_VERDICT_ALLOW or TP_VERDICT_DENY
 * rule_id: the agent's number for the rule that decided, kept in conntrack and
 *          reported with verdicts, so an operator can tell which rule dropped a packet
 */
struct tp_policy_value {
	__u8 verdict;
	__u8 pad[3];
	__u32 rule_id;
};

/*
 * tp_rulecnt_v1: per-CPU hash, rule_id → struct tp_rule_counter: the packets and bytes
 * of every connection a rule decided (both ways, and the ones it dropped). The agent
 * writes a zero entry for each rule id its entries use and removes those no longer
 * used; the datapath only adds to entries that exist. User space sums the CPUs.
 */
struct tp_rule_counter {
	__u64 packets;
	__u64 bytes;
};

#endif
