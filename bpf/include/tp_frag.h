/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_FRAG_H
#define TP_FRAG_H

#include "tp_common.h"

/*
 * tp_frag_v1: LRU hash, struct tp_frag_key → struct tp_frag_ports.
 *
 * Fragment tracking, as Cilium's (enabled there by default). Only the first fragment of
 * an IP datagram carries its L4 header; the datapath records that header's ports under
 * the fields every fragment of the datagram repeats, which are what the receiver
 * reassembles by (RFC 791, RFC 8200): addresses, protocol and IP identification. A
 * later fragment takes its ports from here and goes through conntrack and policy like
 * the first; a later fragment whose first was not seen is dropped (TP_DROP_FRAGMENT).
 * Only the datapath writes this map; entries are never deleted (fragments may arrive
 * out of order, the last before a middle one): LRU eviction retires them.
 *
 *   family:   TP_FAMILY_IPV4 or TP_FAMILY_IPV6
 *   protocol: IPv4 protocol field; IPv6: the Fragment header's next header (the first
 *             header of the fragmentable part, the same in every fragment)
 *   id:       host order; IPv4's 16-bit identification widened, or IPv6's 32-bit
 *             Fragment header identification
 *   saddr, daddr: network order; an IPv4 address fills [0..3], the rest is zero
 * 40 bytes, no implicit padding.
 */
struct tp_frag_key {
	__u8 family;
	__u8 protocol;
	__u8 pad[2];
	__u32 id;
	__u8 saddr[16];
	__u8 daddr[16];
};

/*
 * sport, dport: network order, as the datapath keeps ports (ICMP echo: the identifier
 *               in both, as conntrack has it; other protocols without ports: 0)
 * protocol:     the upper-layer protocol the ports belong to. Equal to the key's for
 *               IPv4; for IPv6 it differs when extension headers (destination options)
 *               follow the Fragment header, which later fragments cannot see.
 */
struct tp_frag_ports {
	__u16 sport;
	__u16 dport;
	__u8 protocol;
	__u8 pad[3];
};

#endif
