/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_ADDR_H
#define TP_ADDR_H

#include "tp_common.h"

/*
 * An exact address of either family, the key of tp_endpoints_v1 and tp_ipcache_v1.
 *   family: TP_FAMILY_IPV4 or TP_FAMILY_IPV6
 *   addr:   network byte order; an IPv4 address fills addr[0..3], the rest is zero
 * 20 bytes, no implicit padding.
 */
struct tp_ip_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

#endif
