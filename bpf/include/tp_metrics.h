/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_METRICS_H
#define TP_METRICS_H

#include "tp_reasons.h"
#include <linux/types.h>

/*
 * tp_metrics_v1: per-CPU array of struct tp_metrics_value, indexed by
 * direction * TP_REASON_MAX + reason (enum tp_direction, enum tp_reason).
 * User space sums the CPUs.
 */
struct tp_metrics_value {
	__u64 packets;
	__u64 bytes;
};

enum tp_metrics_size {
	TP_METRICS_ENTRIES = 2 * TP_REASON_MAX,
};

#endif
