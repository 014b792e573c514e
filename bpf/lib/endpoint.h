/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The endpoint stage: which local pod a packet on a pod's veth belongs to. Its own
 * address is the source of what it sends and the destination of what it receives; the
 * endpoint must also sit on the interface the packet is on, so a pod cannot send from
 * another pod's address, and a routing mistake cannot hand a pod someone else's packets.
 */
#ifndef TP_LIB_ENDPOINT_H
#define TP_LIB_ENDPOINT_H

#include "maps.h"
#include "parse.h"

/* The local pod with this address, or NULL. */
static __always_inline const struct tp_endpoint *tp_local_endpoint(__u8 family, const __u8 *addr)
{
	struct tp_ip_key key = { .family = family };

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&tp_endpoints_v1, &key);
}

/* The endpoint of p on this veth, or NULL with *reason set to the drop reason. */
static __always_inline const struct tp_endpoint *tp_endpoint_of(const struct __sk_buff *skb, const struct tp_packet *p,
							       __u8 dir, __u32 *reason)
{
	struct tp_ip_key key = { .family = p->family };
	const struct tp_endpoint *ep;

	__builtin_memcpy(key.addr, dir == TP_DIR_EGRESS ? p->saddr : p->daddr, 16);
	ep = bpf_map_lookup_elem(&tp_endpoints_v1, &key);
	if (!ep || ep->ifindex != skb->ifindex) {
		*reason = dir == TP_DIR_EGRESS ? TP_DROP_INVALID_SOURCE : TP_DROP_UNKNOWN_DEST;
		return NULL;
	}
	return ep;
}

#endif
