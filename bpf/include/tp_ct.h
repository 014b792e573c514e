/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_CT_H
#define TP_CT_H

#include "tp_common.h"

/*
 * tp_ct_v1: LRU hash, struct tp_ct_key → struct tp_ct_entry.
 *
 * One entry per connection per endpoint, keyed by the tuple of the packet that opened
 * it as seen on that endpoint's veth. direction says which way it was opened
 * (TP_DIR_INGRESS: towards the pod). A reply is found by looking up the reversed tuple
 * with the opposite direction. Keeping endpoint_id and direction in the key means two
 * pods on one node never share an entry: A's egress entry cannot let a packet past B's
 * ingress policy.
 *
 * Ports are in network order. ICMP echo request and reply put the echo identifier in
 * both sport and dport, so the reversed tuple of a reply is the request's tuple.
 */
struct tp_ct_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 endpoint_id;
	__u8 protocol;
	__u8 family;
	__u8 direction;
	__u8 pad;
};

/*
 * expires_ns: bpf_ktime_get_ns() after which the entry is treated as absent
 * rule_id:    rule that allowed the connection (0: endpoint default)
 * flags:      TP_CT_F_*
 */
struct tp_ct_entry {
	__u64 expires_ns;
	__u32 rule_id;
	__u8 flags;
	__u8 pad[3];
};

enum tp_ct_flags {
	TP_CT_F_SEEN_REPLY = 1, /* a reply was seen: TCP gets the established lifetime */
	TP_CT_F_CLOSING = 2,    /* FIN or RST seen: short lifetime */
};

#endif
