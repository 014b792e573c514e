/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

#include <linux/types.h>

/*
 * tp_config_v1: array of one struct tp_config (key 0), written by the agent at run time.
 * Knobs that must change without reloading the programs live here; those fixed for a
 * program's life are const volatile globals instead (bpf/lib/config.h).
 *
 *   lb_seed:   the cluster-wide seed of the flow hash that picks a Maglev slot, so every
 *              node picks the same backend for the same flow
 *   ct_legacy: 1 while an upgraded agent migrates tp_ct_v1 into tp_ct_v2: a connection
 *              missing from tp_ct_v2 is also looked for in tp_ct_v1 (and moved over)
 *   uplink_ifindex: the node's uplink, where NodePort and external traffic arrives and
 *              where connections SNATed to another node's backend leave; 0: none
 *   node_addr4, node_addr6: the node's addresses on it, the source of SNATed connections
 *              (network order; all zero: none of that family)
 * 32 bytes, no implicit padding.
 */
struct tp_config {
	__u32 lb_seed;
	__u8 ct_legacy;
	__u8 pad[3];
	__u32 uplink_ifindex;
	__u8 node_addr4[4];
	__u8 node_addr6[16];
};

#endif
