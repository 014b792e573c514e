/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The rewrite stage: addresses and ports of a packet in place, with incremental
 * checksum updates — the IPv4 header checksum, and the TCP or UDP checksum through its
 * pseudo-header (BPF_F_PSEUDO_HDR keeps a CHECKSUM_PARTIAL skb right: only the
 * pseudo-header part changes there). A UDP checksum of 0 (none, IPv4) stays 0
 * (BPF_F_MARK_MANGLED_0). SCTP needs no update for an address (its CRC32c covers no IP
 * header) and cannot have its ports rewritten (no helper for CRC32c): the agent never
 * programs an SCTP backend on another port. A later fragment has no L4 header: only
 * its addresses change.
 */
#ifndef TP_LIB_NAT_H
#define TP_LIB_NAT_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "parse.h"

enum tp_nat_side {
	TP_NAT_SRC = 0,
	TP_NAT_DST = 1,
};

/* Offset of p's L4 checksum, -1 when there is none to update; *flags for bpf_l4_csum_replace. */
static __always_inline int tp_l4_csum_off(const struct tp_packet *p, __u64 *flags)
{
	*flags = 0;
	if (!p->l4_off)
		return -1;
	switch (p->protocol) {
	case IPPROTO_TCP:
		return p->l4_off + 16;
	case IPPROTO_UDP:
		*flags = BPF_F_MARK_MANGLED_0;
		return p->l4_off + 6;
	case IPPROTO_ICMPV6: /* its checksum covers a pseudo-header (ICMP's does not) */
		return p->family == TP_FAMILY_IPV6 ? p->l4_off + 2 : -1;
	default:
		return -1;
	}
}

/* Rewrites p's source or destination address from `from` to `to`. 0, or negative on failure. */
static __always_inline int tp_nat_addr(struct __sk_buff *skb, const struct tp_packet *p, __u8 side, const __u8 *from,
				       const __u8 *to)
{
	__u64 flags;
	int csum = tp_l4_csum_off(p, &flags);

	if (p->family == TP_FAMILY_IPV4) {
		__u32 old, new;

		__builtin_memcpy(&old, from, 4);
		__builtin_memcpy(&new, to, 4);
		if (old == new)
			return 0;
		if (csum >= 0 && bpf_l4_csum_replace(skb, csum, old, new, flags | BPF_F_PSEUDO_HDR | sizeof(new)))
			return -1;
		if (bpf_l3_csum_replace(skb, p->l3_off + offsetof(struct iphdr, check), old, new, sizeof(new)))
			return -1;
		return bpf_skb_store_bytes(skb, p->l3_off + (side == TP_NAT_SRC ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr)),
					   &new, sizeof(new), 0);
	}
	if (csum >= 0) {
		__s64 diff = bpf_csum_diff((__be32 *)from, 16, (__be32 *)to, 16, 0);

		if (diff < 0 || bpf_l4_csum_replace(skb, csum, 0, diff, flags | BPF_F_PSEUDO_HDR))
			return -1;
	}
	return bpf_skb_store_bytes(skb, p->l3_off + (side == TP_NAT_SRC ? offsetof(struct ipv6hdr, saddr) : offsetof(struct ipv6hdr, daddr)),
				   to, 16, 0);
}

/* Rewrites p's source or destination port (network order) from `from` to `to`. */
static __always_inline int tp_nat_port(struct __sk_buff *skb, const struct tp_packet *p, __u8 side, __u16 from, __u16 to)
{
	__u64 flags;
	int csum;

	if (from == to || !p->l4_off)
		return 0;
	if (p->protocol != IPPROTO_TCP && p->protocol != IPPROTO_UDP)
		return -1;
	csum = tp_l4_csum_off(p, &flags);
	if (bpf_l4_csum_replace(skb, csum, from, to, flags | sizeof(to)))
		return -1;
	return bpf_skb_store_bytes(skb, p->l4_off + (side == TP_NAT_SRC ? 0 : 2), &to, sizeof(to), 0);
}

/* Destination (address and port) of p → addr:port. */
static __always_inline int tp_nat_dst(struct __sk_buff *skb, const struct tp_packet *p, const __u8 *addr, __u16 port)
{
	if (tp_nat_addr(skb, p, TP_NAT_DST, p->daddr, addr))
		return -1;
	return tp_nat_port(skb, p, TP_NAT_DST, p->dport, port);
}

/* Source (address and port) of p → addr:port. */
static __always_inline int tp_nat_src(struct __sk_buff *skb, const struct tp_packet *p, const __u8 *addr, __u16 port)
{
	if (tp_nat_addr(skb, p, TP_NAT_SRC, p->saddr, addr))
		return -1;
	return tp_nat_port(skb, p, TP_NAT_SRC, p->sport, port);
}

#endif
