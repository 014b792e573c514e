/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Run-time knobs: const volatile globals in .rodata, set by the agent before load
 * (src/datapath/config.ts), so the verifier sees constants and dead branches vanish.
 */
#ifndef TP_LIB_CONFIG_H
#define TP_LIB_CONFIG_H

#include <linux/types.h>

#define TP_SECOND_NS 1000000000ULL

/* Conntrack lifetimes, as Cilium's defaults, on the coarse (tick resolution) clock. */
const volatile __u64 tp_ct_lifetime_tcp_syn_ns = 60 * TP_SECOND_NS;     /* TCP before a reply */
const volatile __u64 tp_ct_lifetime_tcp_ns = 21600 * TP_SECOND_NS;      /* TCP established */
const volatile __u64 tp_ct_lifetime_tcp_closing_ns = 10 * TP_SECOND_NS; /* after FIN or RST */
const volatile __u64 tp_ct_lifetime_other_ns = 60 * TP_SECOND_NS;       /* UDP, ICMP, others */

/* A live entry's expiry is rewritten at most this often, to spare the cache line. */
const volatile __u64 tp_ct_refresh_ns = 1 * TP_SECOND_NS;

#endif
