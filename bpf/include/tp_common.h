/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Constants shared by the BPF programs and the agent. Fixed-width types only;
 * src/datapath/constants.ts mirrors every value here and test/datapath/layout.test.ts
 * checks the mirror against the compiled object's BTF.
 */
#ifndef TP_COMMON_H
#define TP_COMMON_H

#include <linux/types.h>

/*
 * Constants are enums, not #defines, so they reach the object's BTF and the layout
 * test can compare them with their TypeScript mirrors.
 */

/* Address family tags used in map keys (not AF_INET/AF_INET6: one byte, stable). */
enum tp_family {
	TP_FAMILY_IPV4 = 4,
	TP_FAMILY_IPV6 = 6,
};

/*
 * Direction, always from the pod's point of view:
 * INGRESS = traffic entering the pod (tc egress on the host-side veth),
 * EGRESS  = traffic leaving the pod (tc ingress on the host-side veth).
 */
enum tp_direction {
	TP_DIR_INGRESS = 0,
	TP_DIR_EGRESS = 1,
};

/* Verdict stored in policy entries and endpoint defaults. 0 is never written. */
enum tp_verdict {
	TP_VERDICT_NONE = 0,
	TP_VERDICT_ALLOW = 1,
	TP_VERDICT_DENY = 2,
	TP_VERDICT_AUDIT = 3, /* audit mode: passes, reported as what a policy would have denied */
	TP_VERDICT_CLOSED = 4, /* an endpoint default: its entries did not fit, so it admits nothing (failed closed) */
};

/*
 * Reserved security identities (numbers as in Cilium, so operators read them the same way).
 * Identities allocated for label sets (cluster-wide) start at TP_IDENTITY_FIRST_ALLOCATED
 * and stay below TP_IDENTITY_LOCAL. From TP_IDENTITY_LOCAL up are a node's own address
 * classes (src/policy/address-classes.ts: an address an ipBlock or an egress named port
 * tells apart from its label twins), never seen by another node; their flags say what
 * kind of address holds them.
 */
enum tp_reserved_identity {
	TP_IDENTITY_ANY = 0,         /* only in policy keys: any peer */
	TP_IDENTITY_HOST = 1,        /* this node's own addresses */
	TP_IDENTITY_WORLD = 2,       /* anything the ipcache does not know */
	TP_IDENTITY_UNMANAGED = 3,   /* inside a node's pod range, no endpoint known (yet) */
	TP_IDENTITY_REMOTE_NODE = 6, /* another node's addresses */
	TP_IDENTITY_FIRST_ALLOCATED = 256,
	TP_IDENTITY_LOCAL = 0x01000000,         /* a node-local address class */
	TP_IDENTITY_LOCAL_IN_PODS = 0x02000000, /* flag of a local class: a pod's address, or one in a pod range */
	TP_IDENTITY_LOCAL_NODE = 0x04000000,    /* flag of a local class: another node's address */
};

#endif
