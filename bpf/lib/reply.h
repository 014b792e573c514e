/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The reply builder: turns a packet into the refusal its sender gets back, in place —
 * a TCP RST for TCP, an ICMP (IPv4) or ICMPv6 port unreachable for anything else — so
 * a connection to a service without endpoints fails at once instead of timing out
 * (kube-proxy REJECTs the same way). The frame is assembled in a per-CPU scratch buffer
 * with every checksum computed in full, then written over the packet, which is cut or
 * grown to the new length. Source and destination (MAC, address, port) are swapped, so
 * the answer comes from the address the sender tried.
 *
 * RST (RFC 9293, 3.10.7.1): to a segment with ACK, seq = its ack; otherwise seq = 0 and
 * ack = its seq + its length (SYN and FIN count one), flags RST|ACK. A RST is never
 * answered. ICMP errors quote the start of the refused packet (its IP header and at
 * least 8 bytes after it, up to TP_REPLY_QUOTE), as RFC 792 and RFC 4443 ask; the quote
 * and a segment's length end where its IP length field says, never in the frame's
 * padding.
 */
#ifndef TP_LIB_REPLY_H
#define TP_LIB_REPLY_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps.h"
#include "parse.h"

#define TP_REPLY_QUOTE 128
#define TP_REPLY_TTL 64
/*
 * Layout in the scratch buffer (8-byte aligned): the frame starts 2 bytes in, so its IP
 * header is 8-byte aligned and headers are written as whole words through typed
 * pointers; the checksum pseudo-header is put together after the frame.
 */
#define TP_REPLY_ETH 2
#define TP_REPLY_IP (TP_REPLY_ETH + ETH_HLEN)
#define TP_REPLY_PSEUDO (TP_REPLY_IP + 40 + 8 + TP_REPLY_QUOTE + 8)


static __always_inline __u16 tp_csum_fold(__s64 sum)
{
	__u64 s = (__u64)sum & 0xffffffff;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* Copies an address of `words` 32-bit words; both sides are 4-byte aligned. */
static __always_inline void tp_copy_words(void *to, const void *from, int words)
{
	__u32 *d = to;
	const __u32 *s = from;

#pragma unroll
	for (int i = 0; i < 4; i++)
		if (i < words)
			d[i] = s[i];
}

/* Ethernet header of the answer: the sender's MACs swapped. */
static __always_inline int tp_reply_eth(struct __sk_buff *skb, struct tp_scratch *s)
{
	__u8 eth[ETH_HLEN];

	if (bpf_skb_load_bytes(skb, 0, eth, ETH_HLEN) < 0)
		return -1;
	__builtin_memcpy(s->buf + TP_REPLY_ETH, eth + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(s->buf + TP_REPLY_ETH + ETH_ALEN, eth, ETH_ALEN);
	__builtin_memcpy(s->buf + TP_REPLY_ETH + 2 * ETH_ALEN, eth + 2 * ETH_ALEN, 2);
	return 0;
}

/*
 * IP header of the answer, from p's destination to its source, carrying `l4len` bytes
 * of `proto`, and the pseudo-header of its L4 checksum. Returns the header's length.
 */
static __always_inline __u32 tp_reply_ip(const struct tp_packet *p, struct tp_scratch *s, __u8 proto, __u16 l4len)
{
	__u32 *pseudo = (__u32 *)(s->buf + TP_REPLY_PSEUDO);

	if (p->family == TP_FAMILY_IPV4) {
		struct iphdr *ip = (struct iphdr *)(s->buf + TP_REPLY_IP);

		__builtin_memset(ip, 0, sizeof(*ip));
		ip->version = 4;
		ip->ihl = 5;
		ip->tot_len = bpf_htons(sizeof(*ip) + l4len);
		ip->frag_off = bpf_htons(0x4000); /* DF */
		ip->ttl = TP_REPLY_TTL;
		ip->protocol = proto;
		tp_copy_words(&ip->saddr, p->daddr, 1);
		tp_copy_words(&ip->daddr, p->saddr, 1);
		ip->check = tp_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)ip, sizeof(*ip), 0));
		/* Pseudo-header: addresses, zero, protocol, L4 length (ICMP uses none). */
		pseudo[0] = ip->saddr;
		pseudo[1] = ip->daddr;
		pseudo[2] = bpf_htonl(((__u32)proto << 16) | l4len);
		return sizeof(*ip);
	}
	struct ipv6hdr *ip6 = (struct ipv6hdr *)(s->buf + TP_REPLY_IP);

	__builtin_memset(ip6, 0, sizeof(*ip6));
	ip6->version = 6;
	ip6->payload_len = bpf_htons(l4len);
	ip6->nexthdr = proto;
	ip6->hop_limit = TP_REPLY_TTL;
	tp_copy_words(&ip6->saddr, p->daddr, 4);
	tp_copy_words(&ip6->daddr, p->saddr, 4);
	/* Pseudo-header: addresses, L4 length (32 bits), three zeros and next header. */
	tp_copy_words(pseudo, p->daddr, 4);
	tp_copy_words(pseudo + 4, p->saddr, 4);
	pseudo[8] = bpf_htonl(l4len);
	pseudo[9] = bpf_htonl(proto);
	return sizeof(*ip6);
}

/* Writes the frame assembled in s, `len` bytes, over the packet. */
static __always_inline int tp_reply_write(struct __sk_buff *skb, struct tp_scratch *s, __u32 len)
{
	if (len > ETH_HLEN + 40 + 8 + TP_REPLY_QUOTE)
		return -1;
	if (bpf_skb_change_tail(skb, len, 0))
		return -1;
	return bpf_skb_store_bytes(skb, 0, s->buf + TP_REPLY_ETH, len, 0);
}

/*
 * Where p's IP packet ends in the frame, from its length field, as the parser reads it
 * (parse.h): bytes after it (a NIC's padding) belong to no header and are never quoted;
 * a length of 0 (BIG TCP, jumbograms) means "to the end of the frame".
 */
static __always_inline int tp_reply_ip_end(struct __sk_buff *skb, const struct tp_packet *p, __u32 *end)
{
	__u16 n;

	if (bpf_skb_load_bytes(skb, p->l3_off + (p->family == TP_FAMILY_IPV4 ? 2 : 4), &n, 2) < 0)
		return -1;
	n = bpf_ntohs(n);
	*end = n ? p->l3_off + n + (p->family == TP_FAMILY_IPV4 ? 0 : 40) : skb->len;
	if (*end > skb->len)
		*end = skb->len;
	return 0;
}

/* The TCP segment's payload length plus its SYN and FIN (what it occupies in sequence space). */
static __always_inline int tp_tcp_seq_len(struct __sk_buff *skb, const struct tp_packet *p, const struct tcphdr *in, __u32 *len)
{
	__u32 end, n;

	if (tp_reply_ip_end(skb, p, &end) < 0)
		return -1;
	n = p->l4_off + in->doff * 4;
	*len = (end > n ? end - n : 0) + in->syn + in->fin;
	return 0;
}

/* p, a TCP segment, becomes the RST that refuses it. 0, or negative (then drop it). */
static __noinline int tp_reply_rst(struct __sk_buff *skb, const struct tp_packet *p)
{
	__u32 zero = 0, hlen, seq_len;
	struct tp_scratch *s = bpf_map_lookup_elem(&tp_scratch_v1, &zero);
	struct tcphdr in, *tcp;
	__s64 sum;

	if (!s || !p->l4_off || bpf_skb_load_bytes(skb, p->l4_off, &in, sizeof(in)) < 0)
		return -1;
	if (in.rst || tp_tcp_seq_len(skb, p, &in, &seq_len) < 0)
		return -1;
	if (tp_reply_eth(skb, s) < 0)
		return -1;
	hlen = tp_reply_ip(p, s, IPPROTO_TCP, sizeof(*tcp));
	tcp = (struct tcphdr *)(s->buf + TP_REPLY_IP + (hlen == 20 ? 20 : 40));
	__builtin_memset(tcp, 0, sizeof(*tcp));
	tcp->source = p->dport;
	tcp->dest = p->sport;
	tcp->doff = sizeof(*tcp) / 4;
	tcp->rst = 1;
	if (in.ack) {
		tcp->seq = in.ack_seq;
	} else {
		tcp->ack_seq = bpf_htonl(bpf_ntohl(in.seq) + seq_len);
		tcp->ack = 1;
	}
	sum = bpf_csum_diff(NULL, 0, (__be32 *)(s->buf + TP_REPLY_PSEUDO), hlen == 20 ? 12 : 40, 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)tcp, sizeof(*tcp), sum);
	tcp->check = tp_csum_fold(sum);
	return tp_reply_write(skb, s, ETH_HLEN + (hlen == 20 ? 20 : 40) + sizeof(*tcp));
}

/* p becomes the ICMP / ICMPv6 port unreachable that refuses it. 0, or negative. */
static __noinline int tp_reply_unreachable(struct __sk_buff *skb, const struct tp_packet *p)
{
	__u32 zero = 0;
	struct tp_scratch *s = bpf_map_lookup_elem(&tp_scratch_v1, &zero);
	bool v4 = p->family == TP_FAMILY_IPV4;
	__u32 hlen = v4 ? 20 : 40, qlen, end;
	__u8 *icmp;
	__s64 sum;

	if (!s || tp_reply_ip_end(skb, p, &end) < 0 || end <= p->l3_off)
		return -1;
	/* The refused packet from its IP header on, in whole 32-bit words, at most TP_REPLY_QUOTE bytes. */
	qlen = end - p->l3_off;
	if (qlen > TP_REPLY_QUOTE)
		qlen = TP_REPLY_QUOTE;
	qlen &= ~3U;
	if (qlen < 28)
		return -1;
	icmp = s->buf + TP_REPLY_IP + (v4 ? 20 : 40);
	if (bpf_skb_load_bytes(skb, p->l3_off, icmp + 8, qlen) < 0)
		return -1;
	if (tp_reply_eth(skb, s) < 0)
		return -1;
	tp_reply_ip(p, s, v4 ? IPPROTO_ICMP : IPPROTO_ICMPV6, 8 + qlen);
	__builtin_memset(icmp, 0, 8);
	icmp[0] = v4 ? 3 : 1; /* destination unreachable */
	icmp[1] = v4 ? 3 : 4; /* port unreachable */
	sum = v4 ? 0 : bpf_csum_diff(NULL, 0, (__be32 *)(s->buf + TP_REPLY_PSEUDO), 40, 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)icmp, 8 + qlen, sum);
	__u16 check = tp_csum_fold(sum);
	__builtin_memcpy(icmp + 2, &check, 2);
	return tp_reply_write(skb, s, ETH_HLEN + hlen + 8 + qlen);
}

/* The refusal of p: a RST for TCP, a port unreachable otherwise. */
static __always_inline int tp_reply_refuse(struct __sk_buff *skb, const struct tp_packet *p)
{
	return p->protocol == IPPROTO_TCP ? tp_reply_rst(skb, p) : tp_reply_unreachable(skb, p);
}

#endif
