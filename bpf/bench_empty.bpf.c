// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Baseline for bench/: a tc program that does nothing, measured beside the datapath. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int tp_bench_empty(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}
