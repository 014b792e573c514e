/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the datapath. Names carry a layout version: change a key or value
 * layout and bump the suffix, so a new agent never writes a new layout into an old
 * pinned map. Names stay within the kernel's 15 characters so the pinned name and
 * the kernel's name agree. Sizes are defaults; the agent may resize before load.
 * Pinning is done by the agent (explicit pin paths), not by libbpf's pinning
 * attribute, so nothing lands in /sys/fs/bpf by accident.
 */
#ifndef TP_LIB_MAPS_H
#define TP_LIB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../include/tp_config.h"
#include "../include/tp_ct.h"
#include "../include/tp_endpoint.h"
#include "../include/tp_frag.h"
#include "../include/tp_ipcache.h"
#include "../include/tp_metrics.h"
#include "../include/tp_policy.h"
#include "../include/tp_service.h"

/* Local pods by address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tp_ip_key);
	__type(value, struct tp_endpoint);
	__uint(max_entries, 1024);
} tp_endpoints_v1 SEC(".maps");

/* Exact peer address → identity (pods and nodes of the whole cluster). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tp_ip_key);
	__type(value, struct tp_ipcache_value);
	__uint(max_entries, 65536);
} tp_ipcache_v1 SEC(".maps");

/* Peer CIDR → identity, consulted when tp_ipcache_v1 misses. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tp_ipcidr_key);
	__type(value, struct tp_ipcache_value);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tp_ipcidr_v1 SEC(".maps");

/* Per-endpoint policy verdicts; see tp_policy.h for the key layout. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct tp_policy_key);
	__type(value, struct tp_policy_value);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tp_policy_v1 SEC(".maps");

/* Packets and bytes per policy rule; see tp_policy.h. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, struct tp_rule_counter);
	__uint(max_entries, 16384);
} tp_rulecnt_v1 SEC(".maps");

/* Connections allowed so far; LRU so a full table evicts the coldest, never refuses. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tp_ct_key);
	__type(value, struct tp_ct_entry);
	__uint(max_entries, 131072);
} tp_ct_v2 SEC(".maps");

/*
 * The conntrack table of tcplane 0.1, read only while migrating (tp_config.ct_legacy).
 * The agent gives it the pinned table's size when there is one to adopt, else 1 entry.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tp_ct_key);
	__type(value, struct tp_ct_entry_v1);
	__uint(max_entries, 131072);
} tp_ct_v1 SEC(".maps");

/* Run-time knobs written by the agent; see tp_config.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct tp_config);
	__uint(max_entries, 1);
} tp_config_v1 SEC(".maps");

static __always_inline const struct tp_config *tp_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&tp_config_v1, &zero);
}

/* Ports of fragmented datagrams from their first fragment, for the later ones; see tp_frag.h. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tp_frag_key);
	__type(value, struct tp_frag_ports);
	__uint(max_entries, 8192);
} tp_frag_v1 SEC(".maps");

/* Service frontends; see tp_service.h. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct tp_svc_key);
	__type(value, struct tp_svc_value);
	__uint(max_entries, 65536);
} tp_svc_v1 SEC(".maps");

/*
 * The shape of every Maglev table. BPF_F_INNER_MAP lets each table have its own size
 * (memory follows backends); the agent creates them with the same flags.
 */
struct tp_lut_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP);
};

/* lut_id → the Maglev table of a frontend. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, TP_LB_MAX_LUTS);
	__array(values, struct tp_lut_inner);
} tp_lut_v1 SEC(".maps");

/* Backend id → backend (array: the per-packet check of an established flow's backend is free). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct tp_backend);
	__uint(max_entries, TP_LB_MAX_BACKENDS);
} tp_backends_v1 SEC(".maps");

/* ClientIP session affinity: the backend each client last reached, per service port. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct tp_affinity_key);
	__type(value, struct tp_affinity_value);
	__uint(max_entries, 65536);
} tp_affinity_v1 SEC(".maps");

/* Room to build a refusal (TCP RST, ICMP error) in: more than the stack can spare. */
#define TP_SCRATCH_SIZE 256
struct tp_scratch {
	__u8 buf[TP_SCRATCH_SIZE] __attribute__((aligned(8)));
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct tp_scratch);
	__uint(max_entries, 1);
} tp_scratch_v1 SEC(".maps");

/* Packets and bytes per hook and reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct tp_metrics_value);
	__uint(max_entries, TP_METRICS_ENTRIES);
} tp_metrics_v2 SEC(".maps");

#endif
