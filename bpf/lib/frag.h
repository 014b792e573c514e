/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fragment tracking (tp_frag.h has the map). Called only for packets the parser marked
 * as fragments, so a whole packet never pays a lookup here.
 *
 * Called after the endpoint lookup, not from the parser: only a packet from a pod's
 * own address (tp_from_pod) or to a local pod (tp_to_pod) writes an entry, so a pod
 * cannot plant ports for another source's datagrams and nothing fills the table for
 * addresses this node does not serve. It is still before the verdict: a denied first
 * fragment's ports are recorded too, so its later fragments meet the same policy
 * lookup and drop under the same reason, not as orphans.
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

/*
 * For a fragment: the first records its ports; a later one takes them (and its L4
 * protocol) from the first. Returns 0, or TP_DROP_FRAGMENT for a later fragment whose
 * first was not seen (or was evicted).
 */
static __always_inline __u32 tp_frag_track(struct tp_packet *p)
{
	struct tp_frag_key key;
	const struct tp_frag_ports *found;

	tp_frag_key_of(&key, p);
	if (p->frag == TP_FRAG_FIRST) {
		struct tp_frag_ports ports = {
			.sport = p->sport,
			.dport = p->dport,
			.protocol = p->protocol,
		};

		/* A datagram resent with the same id, or an id reused, overwrites: newest wins. */
		bpf_map_update_elem(&tp_frag_v1, &key, &ports, BPF_ANY);
		return 0;
	}
	found = bpf_map_lookup_elem(&tp_frag_v1, &key);
	if (!found)
		return TP_DROP_FRAGMENT;
	p->sport = found->sport;
	p->dport = found->dport;
	p->protocol = found->protocol;
	return 0;
}

#endif
