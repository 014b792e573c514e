/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fragment tracking (tp_frag.h has the map). Called only for packets the parser marked
 * as fragments, so a whole packet never pays a lookup here.
 *
 * Both calls come after the endpoint lookup, not from the parser: only a packet from a
 * pod's own address (tp_from_pod) or to a local pod (tp_to_pod) touches the map, so a
 * pod cannot plant ports for another source's datagrams. A first fragment is recorded
 * only once it has passed (conntrack or policy): a pod cannot evict other pods' entries
 * with first fragments that policy refuses, and the later fragments of a refused
 * datagram drop as orphans (TP_DROP_FRAGMENT) after its first dropped by policy.
 */
#ifndef TP_LIB_FRAG_H
#define TP_LIB_FRAG_H

#include "maps.h"
#include "parse.h"

static __always_inline void tp_frag_key_of(struct tp_frag_key *k, const struct tp_packet *p)
{
	k->family = p->family;
	k->protocol = p->frag_proto;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->id = p->frag_id;
	__builtin_memcpy(k->saddr, p->saddr, 16);
	__builtin_memcpy(k->daddr, p->daddr, 16);
}

/* A first fragment that passed: its ports (and L4 protocol) for the later ones. */
static __always_inline void tp_frag_record(const struct tp_packet *p)
{
	struct tp_frag_key key;
	struct tp_frag_ports ports = {
		.sport = p->sport,
		.dport = p->dport,
		.protocol = p->protocol,
	};

	tp_frag_key_of(&key, p);
	/* A datagram resent with the same id, or an id reused, overwrites: newest wins. */
	bpf_map_update_elem(&tp_frag_v1, &key, &ports, BPF_ANY);
}

/*
 * A later fragment takes the ports (and L4 protocol) of its datagram's first fragment.
 * Returns 0, or TP_DROP_FRAGMENT when the first was not seen, was refused, or was evicted.
 */
static __always_inline __u32 tp_frag_lookup(struct tp_packet *p)
{
	struct tp_frag_key key;
	const struct tp_frag_ports *found;

	tp_frag_key_of(&key, p);
	found = bpf_map_lookup_elem(&tp_frag_v1, &key);
	if (!found)
		return TP_DROP_FRAGMENT;
	p->sport = found->sport;
	p->dport = found->dport;
	p->protocol = found->protocol;
	return 0;
}

#endif
