/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_LIB_CONNTRACK_H
#define TP_LIB_CONNTRACK_H

#include <stdbool.h>

#include "config.h"
#include "maps.h"
#include "parse.h"

enum tp_ct_result {
	TP_CT_NEW = 0,
	TP_CT_ESTABLISHED = 1, /* packet in the direction the connection was opened */
	TP_CT_REPLY = 2,       /* packet in the opposite direction */
};

/* The connection key of p on endpoint ep, from the pod's side (see tp_ct.h). */
static __always_inline void tp_ct_key_of(struct tp_ct_key *k, const struct tp_packet *p, __u32 ep, __u8 dir)
{
	if (dir == TP_DIR_INGRESS) {
		__builtin_memcpy(k->pod_addr, p->daddr, 16);
		__builtin_memcpy(k->peer_addr, p->saddr, 16);
		k->pod_port = p->dport;
		k->peer_port = p->sport;
	} else {
		__builtin_memcpy(k->pod_addr, p->saddr, 16);
		__builtin_memcpy(k->peer_addr, p->daddr, 16);
		k->pod_port = p->sport;
		k->peer_port = p->dport;
	}
	k->endpoint_id = ep;
	k->protocol = p->protocol;
	k->family = p->family;
	k->pad[0] = 0;
	k->pad[1] = 0;
}

static __always_inline __u64 tp_ct_lifetime(__u8 protocol, __u8 flags)
{
	if (protocol != IPPROTO_TCP)
		return tp_ct_lifetime_other_ns;
	if (flags & TP_CT_F_CLOSING)
		return tp_ct_lifetime_tcp_closing_ns;
	if (flags & TP_CT_F_SEEN_REPLY)
		return tp_ct_lifetime_tcp_ns;
	return tp_ct_lifetime_tcp_syn_ns;
}

static __always_inline __u8 tp_ct_flags_after(const struct tp_packet *p, __u8 flags, bool reply)
{
	if (reply)
		flags |= TP_CT_F_SEEN_REPLY;
	if (p->protocol == IPPROTO_TCP && (p->tcp_flags & (TP_TCP_FIN | TP_TCP_RST)))
		flags |= TP_CT_F_CLOSING;
	return flags;
}

/* Extends a live entry; writes only when flags change or the expiry moved by tp_ct_refresh_ns. */
static __always_inline void tp_ct_touch(struct tp_ct_entry *e, const struct tp_packet *p, __u64 now,
					bool reply)
{
	__u8 flags = tp_ct_flags_after(p, e->flags, reply);
	__u64 expires = now + tp_ct_lifetime(p->protocol, flags);

	if (flags != e->flags || expires >= e->expires_ns + tp_ct_refresh_ns || expires < e->expires_ns) {
		e->flags = flags;
		e->expires_ns = expires;
	}
}

/*
 * Finds the connection p belongs to on endpoint ep with one lookup: a packet of the
 * direction that opened it, or a reply. Expired entries count as absent.
 */
static __always_inline enum tp_ct_result tp_ct_lookup(const struct tp_packet *p, __u32 ep, __u8 dir,
						       __u64 now)
{
	struct tp_ct_key key;
	struct tp_ct_entry *e;
	bool reply;

	tp_ct_key_of(&key, p, ep, dir);
	e = bpf_map_lookup_elem(&tp_ct_v1, &key);
	if (!e || e->expires_ns <= now)
		return TP_CT_NEW;
	reply = e->opened != dir;
	tp_ct_touch(e, p, now, reply);
	return reply ? TP_CT_REPLY : TP_CT_ESTABLISHED;
}

/* Records a connection the policy allowed. A full table evicts its coldest entry. */
static __always_inline void tp_ct_create(const struct tp_packet *p, __u32 ep, __u8 dir, __u64 now,
					 __u32 rule_id)
{
	struct tp_ct_key key;
	struct tp_ct_entry e = {};

	tp_ct_key_of(&key, p, ep, dir);
	e.flags = tp_ct_flags_after(p, 0, false);
	e.opened = dir;
	e.expires_ns = now + tp_ct_lifetime(p->protocol, e.flags);
	e.rule_id = rule_id;
	bpf_map_update_elem(&tp_ct_v1, &key, &e, BPF_ANY);
}

#endif
