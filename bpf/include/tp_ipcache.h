/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_IPCACHE_H
#define TP_IPCACHE_H

#include "tp_addr.h"

/*
 * The ipcache resolves a peer address to a security identity in two steps:
 *   tp_ipcache_v1  hash, struct tp_ip_key → struct tp_ipcache_value: exact addresses
 *                  (pods, nodes); one hash lookup answers the common case
 *   tp_ipcidr_v1   LPM trie, struct tp_ipcidr_key → struct tp_ipcache_value: CIDRs,
 *                  walked only when the exact lookup misses
 * A miss in both is TP_IDENTITY_WORLD.
 */
struct tp_ipcache_value {
	__u32 identity;
};

/*
 * LPM key. prefixlen counts the bits after it: family (8) + pad (24) are always
 * matched in full, so prefixlen = 32 + the CIDR's prefix length.
 */
struct tp_ipcidr_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

enum tp_ipcidr_prefix {
	TP_IPCIDR_PREFIX_BASE = 32,
};

#endif
