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
 * packet it is. The error is not translated back for a service connection yet.
 */
#ifndef TP_LIB_RELATED_H
#define TP_LIB_RELATED_H

#include <stdbool.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#include "conntrack.h"
#include "maps.h"
#include "parse.h"

/* ICMP header before the quoted packet: type, code, checksum, 4 bytes of rest-of-header. */
#define TP_ICMP_HDR_LEN 8

/*
 * The conntrack key of the connection whose packet ICMP error p (judged on endpoint ep in
 * direction dir) quotes, or false when it quotes no packet of this pod. The quoted packet
 * went the other way: the pod sent it when the error comes in, received it when the pod
 * sends the error.
 */
static __always_inline bool tp_quoted_key(struct __sk_buff *skb, const struct tp_packet *p, __u32 ep, __u8 dir,
					  struct tp_ct_key *k)
{
	__u32 off = p->l4_off + TP_ICMP_HDR_LEN;
	__u8 src[16] = {}, dst[16] = {};
	__u8 protocol, l4[8];
	__u16 sport, dport;

	if (p->family == TP_FAMILY_IPV4) {
		struct iphdr ip;

		if (tp_load(skb, off, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5)
			return false;
		if (ip.frag_off & bpf_htons(TP_IP_OFFSET))
			return false; /* a later fragment: what follows its header is no L4 header */
		__builtin_memcpy(src, &ip.saddr, 4);
		__builtin_memcpy(dst, &ip.daddr, 4);
		protocol = ip.protocol;
		off += ip.ihl * 4;
	} else {
		struct ipv6hdr ip;

		if (tp_load(skb, off, &ip, sizeof(ip)) < 0 || ip.version != 6)
			return false;
		__builtin_memcpy(src, &ip.saddr, 16);
		__builtin_memcpy(dst, &ip.daddr, 16);
		protocol = ip.nexthdr; /* extension headers in a quote: not followed */
		off += sizeof(ip);
	}
	if (off > TP_MAX_DIRECT_OFF || tp_load(skb, off, l4, sizeof(l4)) < 0)
		return false;
	switch (protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP:
		__builtin_memcpy(&sport, &l4[0], 2);
		__builtin_memcpy(&dport, &l4[2], 2);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* Only an echo is tracked (by its identifier); an error about an error is not related. */
		if ((protocol == IPPROTO_ICMP) != (p->family == TP_FAMILY_IPV4))
			return false;
		if (protocol == IPPROTO_ICMP ? (l4[0] != 8 && l4[0] != 0) : (l4[0] != 128 && l4[0] != 129))
			return false;
		__builtin_memcpy(&sport, &l4[4], 2);
		dport = sport;
		break;
	default:
		return false;
	}
	/* Seen from the pod: for an error coming in, the quote is what the pod sent. */
	if (dir == TP_DIR_INGRESS) {
		__builtin_memcpy(k->pod_addr, src, 16);
		__builtin_memcpy(k->peer_addr, dst, 16);
		k->pod_port = sport;
		k->peer_port = dport;
	} else {
		__builtin_memcpy(k->pod_addr, dst, 16);
		__builtin_memcpy(k->peer_addr, src, 16);
		k->pod_port = dport;
		k->peer_port = sport;
	}
	k->endpoint_id = ep;
	k->protocol = protocol;
	k->family = p->family;
	k->pad[0] = 0;
	k->pad[1] = 0;
	return true;
}

/* Whether ICMP error p belongs to a live connection of endpoint ep (see the header). */
static __always_inline bool tp_related(struct __sk_buff *skb, const struct tp_packet *p, __u32 ep, __u8 dir, __u64 now)
{
	struct tp_ct_key k;
	const struct tp_ct_entry *e;

	if (!tp_quoted_key(skb, p, ep, dir, &k))
		return false;
	e = bpf_map_lookup_elem(&tp_ct_v2, &k);
	return e && e->expires_ns > now;
}

#endif
