/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_CT_H
#define TP_CT_H

#include "tp_common.h"

/*
 * tp_ct_v1: LRU hash, struct tp_ct_key → struct tp_ct_entry.
 *
 * One entry per connection per endpoint, keyed from the pod's side: its own address and
 * port, the peer's address and port. A packet in either direction builds the same key
 * (into the pod: pod = destination; out of the pod: pod = source), so one lookup finds
 * the connection, and the entry's `opened` tells a packet of the opening direction from
 * a reply. endpoint_id in the key means two pods on one node never share an entry: A's
 * egress entry cannot let a packet past B's ingress policy.
 *
 * Ports are in network order. ICMP echo request and reply put the echo identifier in
 * both ports.
 */
struct tp_ct_key {
	__u8 pod_addr[16];
	__u8 peer_addr[16];
	__u16 pod_port;
	__u16 peer_port;
	__u32 endpoint_id;
	__u8 protocol;
	__u8 family;
	__u8 pad[2];
};

/*
 * expires_ns: bpf_ktime_get_coarse_ns() after which the entry is treated as absent
 * rule_id:    rule that allowed the connection (0: endpoint default)
 * flags:      TP_CT_F_*
 * opened:     direction of the packet that opened the connection (enum tp_direction)
 */
struct tp_ct_entry {
	__u64 expires_ns;
	__u32 rule_id;
	__u8 flags;
	__u8 opened;
	__u8 pad[2];
};

enum tp_ct_flags {
	TP_CT_F_SEEN_REPLY = 1, /* a reply was seen: TCP gets the established lifetime */
	TP_CT_F_CLOSING = 2,    /* FIN or RST seen: short lifetime */
};

#endif
