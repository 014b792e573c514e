/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_METRICS_H
#define TP_METRICS_H

#include "tp_reasons.h"
#include <linux/types.h>

/*
 * tp_metrics_v2: per-CPU array of struct tp_metrics_value, indexed by
 * hook * TP_REASON_MAX + reason (enum tp_hook, enum tp_reason). User space sums the CPUs.
 * (v1 had only the two pod hooks; an upgraded agent starts v2 from zero.)
 */
struct tp_metrics_value {
	__u64 packets;
	__u64 bytes;
};

/* Where a packet was counted. The pod hooks equal enum tp_direction (the pod's view). */
enum tp_hook {
	TP_HOOK_TO_POD = 0,      /* pod ingress: tc egress of its veth */
	TP_HOOK_FROM_POD = 1,    /* pod egress: tc ingress of its veth */
	TP_HOOK_FROM_UPLINK = 2, /* arriving at the node from outside: tc ingress of the uplink */
	TP_HOOK_TO_UPLINK = 3,   /* retired: tc egress of the uplink, which no program has now (kept: the map's layout) */
	TP_HOOK_MAX = 4,
};

enum tp_metrics_size {
	TP_METRICS_ENTRIES = TP_HOOK_MAX * TP_REASON_MAX,
};

#endif
