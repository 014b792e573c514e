/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The events stage: verdicts reported through the ring buffer (tp_event.h) for
 * `tcplane observe`. Reported are every drop, refusal and audited verdict, and a sample of the new
 * connections allowed (1 in tp_event_sample_allowed; 0: none); packets of known
 * connections that pass are never reported. Each endpoint may send
 * tp_event_rate_per_s events a second (0: no limit); what the limit holds
 * back is counted (tp_evstats_v1) and the endpoint's next event carries the count, so
 * nothing is silently lost. An event the ring buffer has no room for is counted as lost.
 *
 * Verdicts made with a policy decision (new connections, a connection cut by a policy
 * change, a service refusal) are reported where they are made, which knows the rule,
 * the peer identity and the backend; every other drop is reported by the entry program
 * (tp_event_unreported), from what the parser and the endpoint stage found.
 */
#ifndef TP_LIB_EVENTS_H
#define TP_LIB_EVENTS_H

#include <stdbool.h>
#include <bpf/bpf_helpers.h>

#include "../include/tp_event.h"
#include "config.h"
#include "maps.h"
#include "parse.h"
#include "result.h"

const volatile __u8 tp_events_on = 1;             /* 0: no events at all (the code is verified away) */
const volatile __u32 tp_event_sample_allowed = 1; /* report 1 in N allowed new connections; 0: none */
const volatile __u32 tp_event_rate_per_s = 1000;  /* events per endpoint per second (all CPUs); 0: no limit */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} tp_events_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct tp_event_stats);
	__uint(max_entries, 1);
} tp_evstats_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, struct tp_event_budget);
	__uint(max_entries, 4096);
} tp_evrate_v1 SEC(".maps");

/* What one event says besides the packet: filled by the stage that decided. */
struct tp_event_why {
	__u32 reason;
	__u32 peer_identity;
	__u32 rule_id;
	const __u8 *xaddr; /* NULL: not translated */
	__u32 service_id;
	__u16 xport;
	__u8 direction;
	__u8 hook;
	__u8 flags;
};

/*
 * Whether endpoint ep_id may send one more event this second; *held gets the count held
 * back since its last event (taken by this one). One budget per endpoint for all CPUs,
 * kept with atomic adds; two CPUs opening a new window at once may let a few more through.
 */
static __always_inline bool tp_event_budget(__u32 ep_id, __u64 now, __u32 *held, struct tp_event_stats *stats)
{
	struct tp_event_budget *b, fresh = { .window_ns = now, .count = 1 };

	*held = 0;
	if (!tp_event_rate_per_s)
		return true;
	b = bpf_map_lookup_elem(&tp_evrate_v1, &ep_id);
	if (!b) {
		bpf_map_update_elem(&tp_evrate_v1, &ep_id, &fresh, BPF_NOEXIST);
		return true;
	}
	if (now - b->window_ns >= TP_SECOND_NS) {
		b->window_ns = now;
		b->count = 0;
	}
	if (__sync_fetch_and_add(&b->count, 1) >= tp_event_rate_per_s) {
		__sync_fetch_and_add(&b->suppressed, 1);
		if (stats)
			stats->suppressed++;
		return false;
	}
	*held = __sync_lock_test_and_set(&b->suppressed, 0);
	return true;
}

/* Reports a verdict on p (of local endpoint ep, or NULL) through the ring buffer. */
static __always_inline void tp_event(const struct tp_packet *p, const struct tp_endpoint *ep, const struct tp_event_why *why)
{
	__u32 zero = 0, ep_id = ep ? ep->id : 0, held;
	struct tp_event_stats *stats;
	struct tp_event *e;
	__u64 now;

	if (!tp_events_on)
		return; /* first: with events off, no lookup and no clock read is left */
	stats = bpf_map_lookup_elem(&tp_evstats_v1, &zero);
	now = bpf_ktime_get_ns();
	if (!tp_event_budget(ep_id, now, &held, stats))
		return;
	e = bpf_ringbuf_reserve(&tp_events_v1, sizeof(*e), 0);
	if (!e) {
		if (stats)
			stats->lost++;
		return;
	}
	e->time_ns = now;
	__builtin_memcpy(e->saddr, p->saddr, 16);
	__builtin_memcpy(e->daddr, p->daddr, 16);
	if (why->xaddr)
		__builtin_memcpy(e->xaddr, why->xaddr, 16);
	else
		__builtin_memset(e->xaddr, 0, 16);
	e->sport = p->sport;
	e->dport = p->dport;
	e->xport = why->xport;
	e->family = p->family;
	e->protocol = p->protocol;
	e->endpoint_id = ep_id;
	e->identity = ep ? ep->identity : 0;
	e->peer_identity = why->peer_identity;
	e->reason = why->reason;
	e->rule_id = why->rule_id;
	e->suppressed = held;
	e->direction = why->direction;
	e->hook = why->hook;
	e->flags = why->flags | (why->xaddr ? TP_EVENT_F_XLATE : 0);
	e->tcp_flags = p->tcp_flags;
	e->service_id = why->service_id;
	bpf_ringbuf_submit(e, 0);
	if (stats)
		stats->emitted++;
}

/* Whether this allowed new connection is one of the sample reported. */
static __always_inline bool tp_event_sampled(void)
{
	if (!tp_event_sample_allowed)
		return false;
	return tp_event_sample_allowed == 1 || bpf_get_prandom_u32() % tp_event_sample_allowed == 0;
}

/*
 * Reports the verdict a policy decision made (a drop always, an allowed new connection
 * when sampled) and returns r marked as reported.
 */
static __always_inline struct tp_result tp_event_decision(struct tp_result r, const struct tp_packet *p, const struct tp_endpoint *ep,
							   struct tp_event_why *why)
{
	why->reason = r.reason;
	/* Audited verdicts are reported like drops: they are what a policy would have dropped. */
	if (r.reason < TP_DROP_POLICY && r.reason != TP_AUDIT_POLICY && r.reason != TP_AUDIT_POLICY_DEFAULT) {
		if (!tp_event_sampled())
			return r;
		why->flags |= TP_EVENT_F_SAMPLED;
	}
	tp_event(p, ep, why);
	r.reported = 1;
	return r;
}

/* The entry programs' report of a drop or refusal no stage reported. */
static __always_inline void tp_event_unreported(const struct tp_result *r, const struct tp_packet *p, const struct tp_endpoint *ep,
						__u8 dir, __u8 hook)
{
	struct tp_event_why why = { .reason = r->reason, .direction = dir, .hook = hook };

	if (r->reported || r->reason < TP_DROP_POLICY)
		return;
	tp_event(p, ep, &why);
}

#endif
