/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_EVENT_H
#define TP_EVENT_H

#include <linux/types.h>

/*
 * tp_events_v1: BPF ring buffer of struct tp_event, one per verdict reported
 * (bpf/lib/events.h says which), read by the agent and streamed by `tcplane observe`.
 *
 *   time_ns:       bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the verdict was made
 *   saddr, daddr:  the packet's addresses as it arrived (family's bytes first, rest zero);
 *                  for a service connection daddr is the frontend
 *   xaddr, xport:  the backend a service connection was translated to (TP_EVENT_F_XLATE)
 *   sport, dport, xport: network order
 *   endpoint_id, identity: the local pod's endpoint and identity (0: no local pod, as
 *                  for a packet from the uplink to a frontend)
 *   peer_identity: the other side's identity (the backend's for a service connection;
 *                  0: not looked up, as for a malformed packet)
 *   reason:        enum tp_reason, as counted in the metrics
 *   rule_id:       the policy rule that decided (0: the endpoint's default)
 *   suppressed:    events of this endpoint the rate limit held back since the last one
 *                  that went out
 *   direction:     enum tp_direction, as the pod sees it
 *   hook:          enum tp_hook where the verdict was made
 *   flags:         enum tp_event_flags
 *   service_id:    the service port a translated connection went through (0: none)
 * 96 bytes, no implicit padding.
 */
struct tp_event {
	__u64 time_ns;
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 xaddr[16];
	__u16 sport;
	__u16 dport;
	__u16 xport;
	__u8 family;
	__u8 protocol;
	__u32 endpoint_id;
	__u32 identity;
	__u32 peer_identity;
	__u32 reason;
	__u32 rule_id;
	__u32 suppressed;
	__u8 direction;
	__u8 hook;
	__u8 flags;
	__u8 tcp_flags;
	__u32 service_id;
};

enum tp_event_flags {
	TP_EVENT_F_XLATE = 1,   /* a service connection: xaddr/xport hold its backend */
	TP_EVENT_F_SAMPLED = 2, /* an allowed new connection, reported as a sample */
};

/*
 * tp_evstats_v1: per-CPU array of one struct tp_event_stats (key 0). User space sums the
 * CPUs; `lost` are events the ring buffer had no room for (its reader fell behind).
 */
struct tp_event_stats {
	__u64 emitted;
	__u64 suppressed;
	__u64 lost;
};

/* tp_evrate_v1: LRU hash, endpoint id → this second's budget of events (atomic counts). */
struct tp_event_budget {
	__u64 window_ns;
	__u32 count;
	__u32 suppressed;
};

#endif
