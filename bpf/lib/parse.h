/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing. Reads go through tp_load(): straight from the packet's linear data
 * when the bytes are there (the common case, a few ns), through bpf_skb_load_bytes()
 * otherwise (non-linear skbs); both are bounds-checked, so a short or odd frame becomes
 * a counted drop, never a misread. Rules:
 *   - ARP passes (TP_PASS_ARP); any other non-IP ethertype, VLAN-tagged frames
 *     included, is dropped (TP_DROP_UNKNOWN_L3). The kernel strips an 802.1Q tag into
 *     the skb's metadata before tc ingress, so a tag is also looked for there.
 *   - IPv4 with version != 4, IHL < 5 or a total length shorter than its header is
 *     dropped (TP_DROP_INVALID_IP).
 *   - Fragments (IPv4 MF or offset, an IPv6 Fragment header) are marked in p->frag for
 *     fragment tracking (frag.h). A first fragment (offset 0, more to come) is parsed
 *     like any packet; a later one has no L4 header, so the parser stops at the IP
 *     layer and its ports come from the first fragment. DF alone is no fragment, nor is
 *     an IPv6 atomic fragment (offset 0, no M flag, RFC 6946): both are whole packets.
 *   - IPv6 extension headers (hop-by-hop, routing, destination options, AH, Fragment)
 *     are walked, at most TP_IPV6_MAX_EXT of them (TP_DROP_IPV6_EXT beyond).
 *   - ICMPv6 router/neighbour discovery passes (TP_PASS_NDP), unfragmented only: a
 *     fragmented ND message is no neighbour discovery (receivers ignore it, RFC 6980),
 *     so policy decides it as ICMPv6 without ports.
 *   - A header shorter than its protocol requires is dropped (TP_DROP_TRUNCATED). Headers
 *     end where the IP packet ends (IPv4 total length, IPv6 payload length), not where the
 *     frame does: a short packet padded to 60 bytes by a NIC has no L4 header in its
 *     padding. An IP packet longer than the frame is truncated too. A length of 0 (BIG
 *     TCP GSO packets over 64 KiB, IPv6 jumbograms) means "to the end of the frame".
 *   - ICMP is IPv4's and ICMPv6 is IPv6's: carried by the other family it is a protocol
 *     without ports like any other (never neighbour discovery).
 *   - Protocols without ports (anything but TCP, UDP, SCTP, ICMP echo) carry port 0.
 *   - ICMP errors (unreachable, fragmentation needed / packet too big, time exceeded,
 *     parameter problem) are marked in p->icmp_error; the packet they quote is read
 *     by the stage that needs it (related.h).
 */
#ifndef TP_LIB_PARSE_H
#define TP_LIB_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../include/tp_common.h"
#include "../include/tp_reasons.h"

#define TP_IPV6_MAX_EXT 4
#define TP_IP_MF 0x2000
#define TP_IP_OFFSET 0x1fff
/* IPv6 Fragment header: offset in 8-byte units << 3, two reserved bits, M flag. */
#define TP_IP6_MF 0x0001
#define TP_IP6_OFFSET 0xfff8

/* Offsets beyond this are read with bpf_skb_load_bytes (bounds the verifier can check). */
#define TP_MAX_DIRECT_OFF 512

#define TP_TCP_FIN 0x01
#define TP_TCP_SYN 0x02
#define TP_TCP_RST 0x04
#define TP_TCP_ACK 0x10

/* Where a packet stands in a fragmented datagram. */
enum tp_frag_kind {
	TP_FRAG_NONE = 0,  /* a whole packet */
	TP_FRAG_FIRST = 1, /* offset 0, more to come: carries the L4 header */
	TP_FRAG_LATER = 2, /* non-zero offset: no L4 header, ports 0 until frag.h fills them */
};

/*
 * What the datapath needs of a packet; addresses and ports in network order.
 * l3_off and l4_off say where the IP and L4 headers start in the frame, for the stages
 * that rewrite them (l4_off is 0 for a later fragment: it has no L4 header).
 * frag_proto and frag_id (host order) are set for fragments only: the protocol and
 * identification fields of tp_frag_key.
 */
struct tp_packet {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 l3_off;
	__u16 l4_off;
	__u8 family;
	__u8 protocol;
	__u8 tcp_flags;
	__u8 frag;
	__u32 frag_id;
	__u8 frag_proto;
	__u8 ttl; /* IPv4 TTL, IPv6 hop limit */
	__u8 icmp_error; /* an ICMP(v6) error message of its own family: it quotes a packet (related.h) */
};

/* Whether two 16-byte addresses (tp_packet's layout) are equal. */
static __always_inline bool tp_addr_eq(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;

	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

/*
 * A u32 field of the context, read with one load at a constant offset from the context
 * pointer. Plain C (skb->data) lets clang hoist the address arithmetic (skb + 76) out of
 * the load and share it between inlined copies, and the verifier refuses any load through
 * a context pointer so modified ("dereference of modified ctx ptr"). clang 14 did that
 * as soon as one more tp_load() call site was inlined (the IPv6 Fragment header's).
 */
#define tp_skb_u32(skb, field)                                                                  \
	({                                                                                      \
		__u64 __v;                                                                      \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                                                    \
		    : "=r"(__v)                                                                 \
		    : "r"(skb), "i"(offsetof(struct __sk_buff, field)));                        \
		__v;                                                                            \
	})

/*
 * Copies len (a constant) bytes at off into to. Returns 0, or a negative error when the
 * frame is shorter than off + len.
 */
static __always_inline int tp_load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	void *data = (void *)(long)tp_skb_u32(skb, data);
	void *data_end = (void *)(long)tp_skb_u32(skb, data_end);

	if (off <= TP_MAX_DIRECT_OFF) {
		void *from = data + off;

		if (from + len <= data_end) {
			__builtin_memcpy(to, from, len);
			return 0;
		}
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* The IPv6 Fragment header (RFC 8200 4.5); the kernel's struct frag_hdr is not UAPI. */
struct tp_ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__u16 frag_off; /* network order: offset << 3 | reserved (2 bits) | M */
	__u32 identification;
};

/* ICMP and ICMPv6 share this layout for what we read. */
struct tp_icmp_echo {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 id;
	__u16 sequence;
};

/*
 * Where the IP packet starting at ETH_HLEN ends in the frame, from its length field (len:
 * bytes after the first `fixed` ones), or 0 when the frame is shorter than the packet.
 */
static __always_inline __u32 tp_ip_end(const struct __sk_buff *skb, __u32 fixed, __u16 len)
{
	__u32 end;

	if (len == 0) /* BIG TCP GSO packet or jumbogram: the frame says */
		return skb->len;
	end = ETH_HLEN + fixed + len;
	return end <= skb->len ? end : 0;
}

/* Reads the L4 header at off; the IP packet ends at end. */
static __always_inline __u32 tp_parse_l4(struct __sk_buff *skb, __u32 off, __u32 end, struct tp_packet *p)
{
	p->l4_off = off;
	switch (p->protocol) {
	case IPPROTO_TCP: {
		__u8 tcp[20]; /* the fixed TCP header: ports, flags at byte 13 */

		if (off + sizeof(tcp) > end || tp_load(skb, off, tcp, sizeof(tcp)) < 0)
			return TP_DROP_TRUNCATED;
		__builtin_memcpy(&p->sport, &tcp[0], 2);
		__builtin_memcpy(&p->dport, &tcp[2], 2);
		p->tcp_flags = tcp[13];
		return 0;
	}
	case IPPROTO_UDP: {
		__u8 udp[8];

		if (off + sizeof(udp) > end || tp_load(skb, off, udp, sizeof(udp)) < 0)
			return TP_DROP_TRUNCATED;
		__builtin_memcpy(&p->sport, &udp[0], 2);
		__builtin_memcpy(&p->dport, &udp[2], 2);
		return 0;
	}
	case IPPROTO_SCTP: {
		__u8 sctp[12]; /* common header: ports, verification tag, checksum */

		if (off + sizeof(sctp) > end || tp_load(skb, off, sctp, sizeof(sctp)) < 0)
			return TP_DROP_TRUNCATED;
		__builtin_memcpy(&p->sport, &sctp[0], 2);
		__builtin_memcpy(&p->dport, &sctp[2], 2);
		return 0;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		struct tp_icmp_echo icmp;

		if ((p->protocol == IPPROTO_ICMP) != (p->family == TP_FAMILY_IPV4))
			return 0; /* the other family's ICMP: no ports, and not NDP */
		if (off + sizeof(icmp) > end || tp_load(skb, off, &icmp, sizeof(icmp)) < 0)
			return TP_DROP_TRUNCATED;
		if (p->protocol == IPPROTO_ICMP) {
			if (icmp.type == 8 || icmp.type == 0) /* echo request, echo reply */
				p->sport = p->dport = icmp.id;
			/* destination unreachable (fragmentation needed among them), time exceeded, parameter problem */
			else if (icmp.type == 3 || icmp.type == 11 || icmp.type == 12)
				p->icmp_error = 1;
		} else {
			if (icmp.type == 128 || icmp.type == 129) /* echo request, echo reply */
				p->sport = p->dport = icmp.id;
			else if (icmp.type >= 133 && icmp.type <= 137) /* RS, RA, NS, NA, redirect */
				return TP_PASS_NDP;
			/* destination unreachable, packet too big, time exceeded, parameter problem */
			else if (icmp.type >= 1 && icmp.type <= 4)
				p->icmp_error = 1;
		}
		return 0;
	}
	default:
		return 0;
	}
}

static __always_inline __u32 tp_parse_ipv4(struct __sk_buff *skb, struct tp_packet *p)
{
	struct iphdr ip;
	__u16 tot_len;
	__u32 end;

	if (tp_load(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return TP_DROP_TRUNCATED;
	tot_len = bpf_ntohs(ip.tot_len);
	if (ip.version != 4 || ip.ihl < 5 || (tot_len && tot_len < ip.ihl * 4))
		return TP_DROP_INVALID_IP;
	end = tp_ip_end(skb, 0, tot_len);
	if (!end)
		return TP_DROP_TRUNCATED;
	p->family = TP_FAMILY_IPV4;
	p->l3_off = ETH_HLEN;
	p->protocol = ip.protocol;
	p->ttl = ip.ttl;
	__builtin_memcpy(p->saddr, &ip.saddr, 4);
	__builtin_memcpy(p->daddr, &ip.daddr, 4);
	if (ip.frag_off & bpf_htons(TP_IP_MF | TP_IP_OFFSET)) {
		p->frag_id = bpf_ntohs(ip.id);
		p->frag_proto = ip.protocol;
		if (ip.frag_off & bpf_htons(TP_IP_OFFSET)) {
			p->frag = TP_FRAG_LATER;
			return 0;
		}
		p->frag = TP_FRAG_FIRST;
	}
	return tp_parse_l4(skb, ETH_HLEN + ip.ihl * 4, end, p);
}

static __always_inline __u32 tp_parse_ipv6(struct __sk_buff *skb, struct tp_packet *p)
{
	struct ipv6hdr ip6;
	__u32 off = ETH_HLEN + sizeof(ip6);
	__u32 end, reason;
	__u8 next;

	if (tp_load(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
		return TP_DROP_TRUNCATED;
	if (ip6.version != 6)
		return TP_DROP_INVALID_IP;
	end = tp_ip_end(skb, sizeof(ip6), bpf_ntohs(ip6.payload_len));
	if (!end)
		return TP_DROP_TRUNCATED;
	p->family = TP_FAMILY_IPV6;
	p->l3_off = ETH_HLEN;
	p->ttl = ip6.hop_limit;
	__builtin_memcpy(p->saddr, &ip6.saddr, 16);
	__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	next = ip6.nexthdr;

#pragma unroll
	for (int i = 0; i < TP_IPV6_MAX_EXT; i++) {
		__u8 ext[2]; /* next header, length */

		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (off + sizeof(ext) > end || tp_load(skb, off, ext, sizeof(ext)) < 0)
				return TP_DROP_TRUNCATED;
			next = ext[0];
			off += (ext[1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if (off + sizeof(ext) > end || tp_load(skb, off, ext, sizeof(ext)) < 0)
				return TP_DROP_TRUNCATED;
			next = ext[0];
			off += (ext[1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT: {
			struct tp_ipv6_frag_hdr fh;

			if (off + sizeof(fh) > end || tp_load(skb, off, &fh, sizeof(fh)) < 0)
				return TP_DROP_TRUNCATED;
			next = fh.nexthdr;
			off += sizeof(fh);
			if (!(fh.frag_off & bpf_htons(TP_IP6_OFFSET | TP_IP6_MF)))
				break; /* atomic fragment: a whole packet */
			p->frag_id = bpf_ntohl(fh.identification);
			p->frag_proto = next;
			if (fh.frag_off & bpf_htons(TP_IP6_OFFSET)) {
				p->frag = TP_FRAG_LATER;
				p->protocol = next;
				return 0;
			}
			p->frag = TP_FRAG_FIRST;
			break;
		}
		default:
			goto done;
		}
	}
	switch (next) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return TP_DROP_IPV6_EXT;
	}
done:
	p->protocol = next;
	reason = tp_parse_l4(skb, off, end, p);
	if (reason == TP_PASS_NDP && p->frag)
		reason = 0; /* fragmented ND is no ND (RFC 6980): policy decides */
	return reason;
}

/*
 * Fills *p. Returns 0 when the packet is IP and goes on to policy, otherwise the final
 * reason (a pass such as ARP, or a drop).
 */
static __always_inline __u32 tp_parse(struct __sk_buff *skb, struct tp_packet *p)
{
	__u16 proto;

	if (skb->vlan_present)
		return TP_DROP_UNKNOWN_L3;
	if (tp_load(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto)) < 0)
		return TP_DROP_TRUNCATED;
	switch (proto) {
	case bpf_htons(ETH_P_IP):
		return tp_parse_ipv4(skb, p);
	case bpf_htons(ETH_P_IPV6):
		return tp_parse_ipv6(skb, p);
	case bpf_htons(ETH_P_ARP):
		return TP_PASS_ARP;
	default:
		return TP_DROP_UNKNOWN_L3;
	}
}

#endif
