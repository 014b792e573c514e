/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_LIB_POLICY_H
#define TP_LIB_POLICY_H

#include "maps.h"
#include "parse.h"

/* Identity of a peer address: exact match first, then CIDRs, else world. */
static __always_inline __u32 tp_identity_of(__u8 family, const __u8 *addr)
{
	struct tp_ip_key key = { .family = family };
	struct tp_ipcidr_key cidr = { .family = family };
	struct tp_ipcache_value *v;

	__builtin_memcpy(key.addr, addr, 16);
	v = bpf_map_lookup_elem(&tp_ipcache_v1, &key);
	if (v)
		return v->identity;
	cidr.prefixlen = TP_IPCIDR_PREFIX_BASE + (family == TP_FAMILY_IPV4 ? 32 : 128);
	__builtin_memcpy(cidr.addr, addr, 16);
	v = bpf_map_lookup_elem(&tp_ipcidr_v1, &cidr);
	if (v)
		return v->identity;
	return TP_IDENTITY_WORLD;
}

/* The endpoint's entry for this peer and port: the peer's own identity first, then any peer. */
static __always_inline const struct tp_policy_value *
tp_policy_lookup(__u32 ep, __u32 identity, __u8 dir, const struct tp_packet *p)
{
	struct tp_policy_key key = {
		.prefixlen = TP_POLICY_PREFIX_FULL,
		.endpoint_id = ep,
		.identity = identity,
		.direction = dir,
		.protocol = p->protocol,
		.dport = p->dport,
	};
	const struct tp_policy_value *v = bpf_map_lookup_elem(&tp_policy_v1, &key);

	if (v)
		return v;
	key.identity = TP_IDENTITY_ANY;
	return bpf_map_lookup_elem(&tp_policy_v1, &key);
}

#endif
