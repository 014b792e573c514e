/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The related stage: an ICMP error (parse.h marks it) quotes the start of a packet it
 * answers. When that packet is one of the pod's own connections, in either direction,
 * the error belongs to the connection and passes with it (TP_PASS_RELATED), whatever
 * the policies say of the router or host that sent it: "fragmentation needed" and
 * "packet too big" are how path MTU discovery works, and an isolated pod must get
 * them (as the kernel's conntrack calls them RELATED). The quoted packet must be the
 * pod's: it makes the key of a connection conntrack holds for this pod (its endpoint
 * id and its address on the pod's side, so a quote of another pod's packet misses) and
 * has not expired. An error quoting anything else, or too short to
 * say (fewer than the 8 bytes of L4 header RFC 792 promises; a later fragment; an IPv6
 * quote whose next header is an extension header, not followed), is judged as the ICMP
 * packet it is. For the client of a service connection the error is translated back
 * (tp_related_nat).
 */
#ifndef TP_LIB_RELATED_H
#define TP_LIB_RELATED_H

#include <stdbool.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include "conntrack.h"
#include "maps.h"
#include "nat.h"
#include "parse.h"
#include "result.h"

/* ICMP header before the quoted packet: type, code, checksum, 4 bytes of rest-of-header. */
#define TP_ICMP_HDR_LEN 8

/*
 * The packet ICMP error p quotes, described as the parser describes a packet (family,
 * protocol, addresses, ports or echo identifier, where its headers start), or false
 * when the quote says too little to belong to a connection.
 */
static __always_inline bool tp_quoted_packet(struct __sk_buff *skb, const struct tp_packet *p, struct tp_packet *q)
{
	__u32 off = p->l4_off + TP_ICMP_HDR_LEN;
	__u8 l4[8];

	q->family = p->family;
	q->l3_off = off;
	if (p->family == TP_FAMILY_IPV4) {
		struct iphdr ip;

		if (tp_load(skb, off, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5)
			return false;
		if (ip.frag_off & bpf_htons(TP_IP_OFFSET))
			return false; /* a later fragment: what follows its header is no L4 header */
		__builtin_memcpy(q->saddr, &ip.saddr, 4);
		__builtin_memcpy(q->daddr, &ip.daddr, 4);
		q->protocol = ip.protocol;
		off += ip.ihl * 4;
	} else {
		struct ipv6hdr ip;

		if (tp_load(skb, off, &ip, sizeof(ip)) < 0 || ip.version != 6)
			return false;
		__builtin_memcpy(q->saddr, &ip.saddr, 16);
		__builtin_memcpy(q->daddr, &ip.daddr, 16);
		q->protocol = ip.nexthdr; /* extension headers in a quote: not followed */
		off += sizeof(ip);
	}
	if (off > TP_MAX_DIRECT_OFF || tp_load(skb, off, l4, sizeof(l4)) < 0)
		return false;
	q->l4_off = off;
	switch (q->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		__builtin_memcpy(&q->sport, &l4[0], 2);
		__builtin_memcpy(&q->dport, &l4[2], 2);
		return true;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* Only an echo is tracked (by its identifier); an error about an error is not related. */
		if ((q->protocol == IPPROTO_ICMP) != (p->family == TP_FAMILY_IPV4))
			return false;
		if (q->protocol == IPPROTO_ICMP ? (l4[0] != 8 && l4[0] != 0) : (l4[0] != 128 && l4[0] != 129))
			return false;
		__builtin_memcpy(&q->sport, &l4[4], 2);
		q->dport = q->sport;
		return true;
	default:
		return false;
	}
}

/*
 * Bytes of the quote a rewrite touches, from its IP header through its L4
 * checksum: IPv4 (20, no options) or IPv6 (40) header, then UDP's 8 or TCP's first 20.
 */
#define TP_QUOTE_MAX 60

/* Copies the quote's first len bytes (28, 40, 48 or 60: a constant per call, as tp_load needs). 0, or negative. */
static __always_inline int tp_load_quote(struct __sk_buff *skb, __u32 off, __u8 *to, __u32 len)
{
	switch (len) {
	case 28:
		return tp_load(skb, off, to, 28);
	case 40:
		return tp_load(skb, off, to, 40);
	case 48:
		return tp_load(skb, off, to, 48);
	default:
		return tp_load(skb, off, to, TP_QUOTE_MAX);
	}
}

/*
 * An ICMP error of a service connection, translated as the connection's own packets are.
 * To the client (`to_client`, an RNAT entry): about what it sent to the backend (a
 * router's "fragmentation needed", the backend's "port unreachable"), the quote gets
 * the frontend back as its destination and the error, when the backend sent it, the
 * frontend as its source, as the client's socket knows them. From the client (a DNAT
 * entry): about a reply it got from the frontend, the quote's source becomes the
 * backend again and so does the error's destination, as the backend sent it. The
 * quote's IP and L4 checksums are updated as for any translation (nat.h), and the ICMP
 * checksum by the difference of the bytes that changed. Quotes this cannot rewrite
 * (IPv4 options; SCTP; a TCP quote cut before its checksum) pass as they are. Returns
 * 0, or negative when a write failed half way.
 */
static __always_inline int tp_related_nat(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_ct_entry *e,
					  const struct tp_packet *q, bool to_client)
{
	__u32 ip_len = p->family == TP_FAMILY_IPV4 ? 20 : 40;
	__u32 zero = 0, len;
	struct tp_scratch *room;
	__u8 *before, *after;
	__s64 diff;

	if (q->l4_off != q->l3_off + ip_len || (q->protocol != IPPROTO_TCP && q->protocol != IPPROTO_UDP))
		return 0;
	room = bpf_map_lookup_elem(&tp_scratch_v1, &zero); /* the stack has no room for both copies */
	if (!room)
		return 0;
	before = room->buf;
	after = room->buf + TP_QUOTE_MAX + 4;
	__builtin_memset(room->buf, 0, 2 * TP_QUOTE_MAX + 8);
	len = ip_len + (q->protocol == IPPROTO_TCP ? 20 : 8);
	if (tp_load_quote(skb, q->l3_off, before, len))
		return 0;
	/* The quote's destination is the backend (to the client), its source the frontend (from it). */
	if (to_client ? tp_nat_dst(skb, q, e->frontend_addr, e->frontend_port) : tp_nat_src(skb, q, e->backend_addr, e->backend_port))
		return -1;
	if (tp_load_quote(skb, q->l3_off, after, len))
		return -1;
	diff = bpf_csum_diff((__be32 *)before, TP_QUOTE_MAX, (__be32 *)after, TP_QUOTE_MAX, 0);
	if (diff < 0 || bpf_l4_csum_replace(skb, p->l4_off + 2, 0, diff, 0))
		return -1;
	if (to_client && tp_addr_eq(p->saddr, e->backend_addr))
		return tp_nat_addr(skb, p, TP_NAT_SRC, p->saddr, e->frontend_addr);
	if (!to_client && tp_addr_eq(p->daddr, e->frontend_addr))
		return tp_nat_addr(skb, p, TP_NAT_DST, p->daddr, e->backend_addr);
	return 0;
}

/*
 * An ICMP error p that belongs to a live connection of endpoint ep (see the header):
 * TP_PASS_RELATED, rewritten for the client of a service connection; else a result
 * that does not go on (the caller judges p as the packet it is). *k is room for the
 * quoted connection's key (the caller's own, which it fills after: the stack is tight).
 */
static __always_inline struct tp_result tp_related(struct __sk_buff *skb, const struct tp_packet *p, __u32 ep, __u8 dir, __u64 now,
						    struct tp_ct_key *k)
{
	struct tp_packet q = {};
	const struct tp_ct_entry *e;

	if (!tp_quoted_packet(skb, p, &q))
		return tp_decided(0);
	/* Seen from the pod, the quote went the other way: what it sent, for an error coming in. */
	tp_ct_key_of(k, &q, ep, dir == TP_DIR_INGRESS ? TP_DIR_EGRESS : TP_DIR_INGRESS);
	e = bpf_map_lookup_elem(&tp_ct_v2, k);
	if (!e || e->expires_ns <= now)
		return tp_decided(0);
	/* The client's side of a service connection: RNAT entries meet errors coming in, DNAT ones errors going out. */
	if ((e->flags & (TP_CT_F_HAIRPIN | TP_CT_F_EXTERNAL)) ||
	    !(e->nat == TP_CT_NAT_RNAT ? dir == TP_DIR_INGRESS : e->nat == TP_CT_NAT_DNAT && dir == TP_DIR_EGRESS))
		return tp_decided(TP_PASS_RELATED);
	if (tp_related_nat(skb, p, e, &q, e->nat == TP_CT_NAT_RNAT))
		return tp_decided(TP_DROP_NAT);
	return tp_result_of(TP_PASS_RELATED, TP_ACT_REWRITE);
}

#endif
