/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The stages after the endpoint is known, in DESIGN.md's order: (an ICMP error of a
 * connection: related.h) conntrack → service
 * translation (new connections from a pod) → policy → conntrack create → rewrite →
 * (a pod's packet for another node's pod) out of the uplink, forward.h. A
 * packet of a known connection costs one lookup (and, for a service connection, the
 * array lookup that its backend still serves); only a new connection reaches the
 * service and policy stages.
 *
 * Service translation happens per packet on the client's veth, whatever its socket
 * does: the destination becomes the backend (DNAT), and the backend's replies get the
 * frontend back as their source (RNAT), so the client only ever sees the service
 * address. Policy judges the translated connection: the client's egress against the
 * backend here, the backend's ingress against the client's own identity where the
 * backend lives — a ClusterIP launders nothing. A pod reaching itself through a service
 * (hairpin) is always allowed and sees the connection come from the service address.
 */
#ifndef TP_LIB_PIPELINE_H
#define TP_LIB_PIPELINE_H

#include "conntrack.h"
#include "endpoint.h"
#include "events.h"
#include "forward.h"
#include "lb.h"
#include "nat.h"
#include "policy.h"
#include "related.h"
#include "reply.h"
#include "result.h"
#include "uplink.h"

/*
 * A known connection whose endpoint's policy generation moved since it was judged (see
 * tp_endpoint.h): judged again as it was opened — its direction, its peer's identity now
 * (the backend for a service connection), its original destination port. 0 when it is
 * still allowed (the entry then records this generation and the deciding rule), else
 * the drop reason, and the entry is marked closing: the packets it drops do not keep it
 * for hours. A pod's hairpin through a service is always allowed. A service connection
 * whose backend went away is not judged here: it chooses again first (tp_pod_flow).
 */
static __always_inline __u32 tp_rejudge(const struct tp_packet *p, const struct tp_endpoint *ep, const struct tp_ct_key *k,
					struct tp_ct_entry *e, __u8 dir, __u64 now)
{
	const __u8 *peer = k->peer_addr;
	__u16 dport = e->opened == TP_DIR_INGRESS ? k->pod_port : k->peer_port;
	__u32 reason, rule_id = 0, identity;

	if (!(e->flags & TP_CT_F_HAIRPIN)) {
		struct tp_event_why why = { .direction = e->opened, .hook = dir };

		if (e->nat == TP_CT_NAT_DNAT) {
			peer = e->backend_addr;
			dport = e->backend_port;
			why.xaddr = e->backend_addr;
			why.xport = e->backend_port;
			why.service_id = e->service_id;
		}
		identity = tp_identity_of(p->family, peer);
		reason = tp_policy_decide(ep, identity, e->opened, p->protocol, dport, &rule_id);
		if (reason >= TP_DROP_POLICY) {
			/* Cut: closing, so the packets it drops keep it no longer than a closed one. */
			e->flags |= TP_CT_F_CLOSING;
			if (e->expires_ns > now + tp_ct_lifetime_tcp_closing_ns)
				e->expires_ns = now + tp_ct_lifetime_tcp_closing_ns;
			why.reason = reason;
			why.peer_identity = identity;
			why.rule_id = rule_id;
			tp_event(p, ep, &why);
			e->rule_id = rule_id; /* the rule that cut it: its drops count under it */
			return reason;
		}
		e->rule_id = rule_id;
	}
	e->policy_gen = ep->policy_gen;
	return 0;
}

/* A reply of a service connection: the backend's source becomes the frontend again. */
static __always_inline struct tp_result tp_rnat(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_ct_key *k,
						 const struct tp_ct_entry *e)
{
	if (tp_nat_src(skb, p, e->frontend_addr, e->frontend_port))
		return tp_decided(TP_DROP_NAT);
	/* Hairpin: the client is the pod itself; it was reached from the frontend address. */
	if ((e->flags & TP_CT_F_HAIRPIN) && tp_nat_addr(skb, p, TP_NAT_DST, p->daddr, k->pod_addr))
		return tp_decided(TP_DROP_NAT);
	return tp_result_of(TP_PASS_REPLY, TP_ACT_REWRITE);
}

/* A packet from the client of a service connection: to its backend. */
static __always_inline struct tp_result tp_dnat(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_ct_entry *e,
						 __u32 reason)
{
	if (tp_nat_dst(skb, p, e->backend_addr, e->backend_port))
		return tp_decided(TP_DROP_NAT);
	if ((e->flags & TP_CT_F_HAIRPIN) && tp_nat_addr(skb, p, TP_NAT_SRC, p->saddr, e->frontend_addr))
		return tp_decided(TP_DROP_NAT);
	return tp_result_of(reason, TP_ACT_REWRITE);
}

/* A packet of a known connection (entry e): judged again if the policies moved, translated if it is a service's. */
static __always_inline struct tp_result tp_known_flow(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_endpoint *ep,
						      const struct tp_ct_key *k, struct tp_ct_entry *e, __u8 dir, __u64 now)
{
	__u32 reason;

	if ((__u16)e->policy_gen != ep->policy_gen && (reason = tp_rejudge(p, ep, k, e, dir, now))) {
		struct tp_result cut = tp_decided(reason);

		cut.reported = 1; /* by tp_rejudge */
		return cut;
	}
	if (e->opened == dir)
		return e->nat == TP_CT_NAT_DNAT ? tp_dnat(skb, p, e, TP_PASS_ESTABLISHED) : tp_decided(TP_PASS_ESTABLISHED);
	if (e->nat == TP_CT_NAT_RNAT)
		return tp_rnat(skb, p, k, e);
	if (e->flags & TP_CT_F_OUTSIDE)
		return tp_external_reply(skb, p, now);
	return tp_decided(TP_PASS_REPLY);
}

/*
 * The two entries of a new service connection (tp_ct.h): client ↔ frontend (taking over
 * `stale`, k's entry that no longer counts, if any), client ↔ backend (taking over the
 * one its key holds when that no longer counts: a client that opens connections fast
 * reuses its ports, and Maglev sends the same port to the same backend again).
 */
static __always_inline void tp_ct_create_service(const struct tp_ct_key *k, const struct tp_packet *p, const struct tp_xlate *x,
						 const struct tp_svc_value *svc, struct tp_ct_entry *e, struct tp_ct_entry *stale,
						 __u64 now)
{
	struct tp_ct_key twin;

	e->nat = TP_CT_NAT_DNAT;
	e->service_id = svc->service_id;
	e->backend_id = x->id;
	__builtin_memcpy(e->frontend_addr, p->daddr, 16);
	e->frontend_port = p->dport;
	__builtin_memcpy(e->backend_addr, x->addr, 16);
	e->backend_port = x->port;
	if (x->hairpin)
		e->flags |= TP_CT_F_HAIRPIN;
	e->flags |= tp_ct_affinity_flags(svc);
	tp_ct_create(k, e, stale);
	tp_ct_twin_key(&twin, k, e);
	e->nat = TP_CT_NAT_RNAT;
	e->flags &= ~(TP_CT_F_AFFINITY | TP_CT_F_AFFINITY_LOCAL);
	if (x->hairpin)
		e->opened = TP_DIR_INGRESS; /* the translated packet enters the pod as a new arrival */
	tp_ct_create(&twin, e, tp_ct_stale_of(&twin, p, now));
}

/*
 * A new connection from a pod to service frontend svc; *fresh is room for its entries,
 * `stale` k's entry that no longer counts (tp_ct_hit).
 */
static __always_inline struct tp_result tp_to_service(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_endpoint *ep,
						      const struct tp_ct_key *k, const struct tp_svc_value *svc, __u64 now,
						      struct tp_ct_entry *fresh, struct tp_ct_entry *stale)
{
	struct tp_event_why why = { .direction = TP_DIR_EGRESS, .hook = TP_HOOK_FROM_POD, .service_id = svc->service_id };
	struct tp_xlate x = {};
	struct tp_result r;
	__u32 reason, rule_id = 0;

	if (!tp_lb_pick(p, svc, now, &x)) {
		if (svc->empty == TP_SVC_EMPTY_DROP)
			return tp_event_decision(tp_decided(TP_DROP_NO_LOCAL_BACKEND), p, ep, &why);
		/* Refused all the same, but a RST is never answered (RFC 9293): dropped. */
		if (p->protocol == IPPROTO_TCP && (p->tcp_flags & TP_TCP_RST))
			return tp_event_decision(tp_decided(TP_REJECT_NO_BACKEND), p, ep, &why);
		if (tp_reply_refuse(skb, p))
			return tp_decided(TP_DROP_NAT);
		r = tp_result_of(TP_REJECT_NO_BACKEND, TP_ACT_REPLY);
		r.ifindex = skb->ifindex;
		return tp_event_decision(r, p, ep, &why);
	}
	why.xaddr = x.addr;
	why.xport = x.port;
	if (x.hairpin) {
		reason = TP_PASS_HAIRPIN; /* a pod always reaches itself */
		why.peer_identity = ep->identity;
	} else {
		why.peer_identity = tp_identity_of(p->family, x.addr);
		reason = tp_policy_decide(ep, why.peer_identity, TP_DIR_EGRESS, p->protocol, x.port, &rule_id);
		why.rule_id = rule_id;
		if (reason >= TP_DROP_POLICY)
			return tp_under_rule(tp_event_decision(tp_decided(reason), p, ep, &why), rule_id);
	}
	tp_ct_entry_init(fresh, p, TP_DIR_EGRESS, now, rule_id);
	fresh->policy_gen = ep->policy_gen; /* judged under this generation */
	if (!x.hairpin && tp_identity_in_pods(why.peer_identity))
		tp_route_learn(skb, p, ep, p->saddr, x.addr, fresh); /* the RNAT twin keeps it: packets straight to the backend match it */
	tp_ct_create_service(k, p, &x, svc, fresh, stale, now);
	if (svc->affinity_timeout_s)
		tp_lb_remember(svc->service_id, svc->affinity_scope, p->family, p->saddr, x.id, now);
	/* Reported before the rewrite: the event reads the backend from x, not the packet. */
	r = tp_under_rule(tp_event_decision(tp_result_of(reason, TP_ACT_REWRITE), p, ep, &why), rule_id);
	if (tp_nat_dst(skb, p, x.addr, x.port))
		return tp_decided(TP_DROP_NAT);
	if (x.hairpin && tp_nat_addr(skb, p, TP_NAT_SRC, p->saddr, p->daddr))
		return tp_decided(TP_DROP_NAT);
	return tp_forward(skb, p, fresh, r);
}

/*
 * Verdict (and rewrite) for an IP packet of endpoint ep; *fresh is room for a new
 * connection's entries (the entry program's: one copy of their 88 bytes per program,
 * which the verifier's 512-byte stack needs). `via_uplink`: judged at the uplink
 * (lib/deliver.h), where a new connection from this node's own address or one of its
 * pods' is a spoof the node's stack would have dropped as a martian.
 */
static __always_inline struct tp_result tp_pod_flow(struct __sk_buff *skb, const struct tp_packet *p, const struct tp_endpoint *ep,
						    __u8 dir, struct tp_ct_entry *fresh, bool via_uplink)
{
	__u64 now = bpf_ktime_get_coarse_ns(); /* tick resolution is plenty for lifetimes of seconds */
	struct tp_ct_hit hit = {};
	struct tp_event_why why;
	struct tp_result r;
	const struct tp_svc_value *svc;
	struct tp_ct_key key;
	__u32 identity, reason, rule_id;
	const __u8 *peer;

	if (p->icmp_error) {
		struct tp_result related = tp_related(skb, p, ep->id, dir, now, &key);

		if (related.reason)
			return related;
	}
	tp_ct_key_of(&key, p, ep->id, dir);
	switch (tp_ct_lookup(&key, p, dir, now, &hit)) {
	case TP_CT_REPLY:
		break;
	case TP_CT_ESTABLISHED:
		/* A backend that stopped serving it: chosen again (and judged) as for a new connection. */
		if (hit.entry->nat == TP_CT_NAT_DNAT && !tp_lb_established(hit.entry, p, hit.refreshed, now))
			hit.entry = NULL; /* live, its packets maybe on other CPUs: an update replaces it */
		break;
	default:
		hit.entry = NULL;
		break;
	}
	if (hit.entry) {
		struct tp_result known = tp_under_rule(tp_known_flow(skb, p, ep, &key, hit.entry, dir, now), hit.entry->rule_id);

		return dir == TP_DIR_EGRESS ? tp_forward(skb, p, hit.entry, known) : known;
	}

	/* A service address first: a new connection to a ClusterIP needs no identity lookup. */
	if (dir == TP_DIR_EGRESS && (svc = tp_lb_frontend(p, TP_SVC_FROM_POD, false)))
		return tp_to_service(skb, p, ep, &key, svc, now, fresh, hit.stale);
	peer = dir == TP_DIR_INGRESS ? p->saddr : p->daddr;
	identity = tp_identity_of(p->family, peer);
	if (via_uplink && (identity == TP_IDENTITY_HOST || tp_local_endpoint(p->family, peer)))
		return tp_decided(TP_DROP_INVALID_SOURCE);
	if (dir == TP_DIR_EGRESS && (identity == TP_IDENTITY_HOST || tp_identity_is_remote_node(identity)) &&
	    (svc = tp_lb_nodeport(p, TP_SVC_FROM_POD)))
		return tp_to_service(skb, p, ep, &key, svc, now, fresh, hit.stale);
	reason = tp_policy_decide(ep, identity, dir, p->protocol, p->dport, &rule_id);
	/* Filled only here, on a new connection: a known one's packets never build it. */
	why = (struct tp_event_why){ .direction = dir, .hook = dir /* the pod hooks equal the directions */, .peer_identity = identity, .rule_id = rule_id };
	if (reason >= TP_DROP_POLICY)
		return tp_under_rule(tp_event_decision(tp_decided(reason), p, ep, &why), rule_id);
	tp_ct_entry_init(fresh, p, dir, now, rule_id);
	fresh->policy_gen = ep->policy_gen; /* judged under this generation */
	if (!tp_identity_in_pods(identity)) {
		if (dir == TP_DIR_INGRESS)
			fresh->flags |= TP_CT_F_OUTSIDE;
	} else {
		tp_route_learn(skb, p, ep, key.pod_addr, peer, fresh); /* for what the pod sends on it, either way it opened */
	}
	tp_ct_create(&key, fresh, hit.stale);
	r = tp_under_rule(tp_event_decision(tp_decided(reason), p, ep, &why), rule_id);
	return dir == TP_DIR_EGRESS ? tp_forward(skb, p, fresh, r) : r;
}

#endif
