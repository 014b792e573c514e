/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The routing hop a packet takes when tcplane sends it past the node's forwarding
 * (lib/deliver.h into a pod, lib/forward.h out of the uplink): what the node's
 * forwarding would have done to its header.
 */
#ifndef TP_LIB_HOP_H
#define TP_LIB_HOP_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>

#include "parse.h"

/*
 * The routing hop: TTL (hop limit) down by one. The IPv4 header checksum
 * covers TTL as the high byte of its 16-bit word with the protocol; IPv6 has no header
 * checksum, so a CHECKSUM_COMPLETE skb's sum is recomputed for the changed byte (the
 * node's forwarding would have dropped it to CHECKSUM_NONE).
 */
static __always_inline int tp_hop(struct __sk_buff *skb, const struct tp_packet *p)
{
	__u8 ttl = p->ttl, next = ttl - 1;

	if (p->family == TP_FAMILY_IPV4) {
		if (bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check), bpf_htons((__u16)ttl << 8), bpf_htons((__u16)next << 8), 2))
			return -1;
		return bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct iphdr, ttl), &next, 1, 0);
	}
	return bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct ipv6hdr, hop_limit), &next, 1, BPF_F_RECOMPUTE_CSUM);
}

#endif
