/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_LIB_METRICS_H
#define TP_LIB_METRICS_H

#include "maps.h"

/* Counts one packet of `len` bytes (its length as it arrived, before any rewrite) at hook. */
static __always_inline void tp_count(__u8 hook, __u32 reason, __u32 len)
{
	__u32 idx = (__u32)(hook & (TP_HOOK_MAX - 1)) * TP_REASON_MAX + (reason & (TP_REASON_MAX - 1));
	struct tp_metrics_value *m = bpf_map_lookup_elem(&tp_metrics_v2, &idx);

	if (m) {
		m->packets++; /* per-CPU slot: no atomics needed */
		m->bytes += len;
	}
}

/* Counts one packet of `len` bytes under the policy rule that governs it (none: 0). */
static __always_inline void tp_count_rule(__u32 rule_id, __u32 len)
{
	struct tp_rule_counter *c;

	if (!rule_id)
		return;
	c = bpf_map_lookup_elem(&tp_rulecnt_v1, &rule_id);
	if (c) {
		c->packets++;
		c->bytes += len;
	}
}

#endif
