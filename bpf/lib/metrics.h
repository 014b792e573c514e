/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_LIB_METRICS_H
#define TP_LIB_METRICS_H

#include "maps.h"

static __always_inline void tp_count(const struct __sk_buff *skb, __u8 dir, __u32 reason)
{
	__u32 idx = (__u32)dir * TP_REASON_MAX + (reason & (TP_REASON_MAX - 1));
	struct tp_metrics_value *m = bpf_map_lookup_elem(&tp_metrics_v1, &idx);

	if (m) {
		m->packets++; /* per-CPU slot: no atomics needed */
		m->bytes += skb->len;
	}
}

#endif
