/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Why the datapath passed or dropped a packet. Every packet the programs see is
 * counted under exactly one reason. Numbers are part of the metrics interface:
 * never renumber; a retired reason stays as TP_REASON_UNUSED_<n>.
 * Mirrored by src/datapath/reasons.ts (checked against BTF by the layout test).
 */
#ifndef TP_REASONS_H
#define TP_REASONS_H

enum tp_reason {
	TP_REASON_UNUSED_0 = 0,

	/* passed */
	TP_PASS_ESTABLISHED = 1,  /* conntrack: packet of a connection already allowed */
	TP_PASS_REPLY = 2,        /* conntrack: reply of a connection allowed the other way */
	TP_PASS_POLICY = 3,       /* new connection allowed by a policy entry */
	TP_PASS_DEFAULT = 4,      /* new connection, endpoint not isolated in this direction */
	TP_PASS_ARP = 5,          /* ARP: needed for the veth to work at all */
	TP_PASS_NDP = 6,          /* ICMPv6 router/neighbour discovery */
	TP_PASS_HAIRPIN = 7,      /* a pod reaching itself through a service: always allowed */
	TP_PASS_UPLINK = 8,       /* on the uplink, not service traffic: handed on unchanged */
	TP_PASS_EXTERNAL = 9,     /* from outside to a service frontend: translated to its backend */
	TP_PASS_RELATED = 10,     /* an ICMP error quoting a packet of a connection the pod has (PMTU discovery, unreachables) */
	TP_AUDIT_POLICY = 11,     /* new connection an audited policy's rule would deny: passed, reported as audited */
	TP_AUDIT_POLICY_DEFAULT = 12, /* new connection the isolation of audited policies would deny: passed, reported as audited */

	/* dropped */
	TP_DROP_POLICY = 128,         /* a policy entry denies this peer/port */
	TP_DROP_POLICY_DEFAULT = 129, /* endpoint isolated and no entry allows it */
	TP_DROP_TRUNCATED = 130,      /* headers shorter than their protocol requires */
	TP_DROP_UNKNOWN_L3 = 131,     /* neither IPv4, IPv6 nor ARP (VLAN tags included) */
	TP_DROP_INVALID_IP = 132,     /* bad IP version or header length */
	TP_DROP_FRAGMENT = 133,       /* fragment whose first fragment was not seen (no ports to decide by) */
	TP_DROP_INVALID_SOURCE = 134, /* from a pod: source address is not that pod's; from the uplink: this node's or one of its pods' */
	TP_DROP_UNKNOWN_DEST = 135,   /* to a pod: destination is not that pod's address */
	TP_DROP_IPV6_EXT = 136,       /* IPv6 extension header chain longer than we walk */
	TP_REJECT_NO_BACKEND = 137,   /* to a service without endpoints: refused with a TCP RST or ICMP port unreachable (a RST: dropped unanswered) */
	TP_DROP_NO_LOCAL_BACKEND = 138, /* to a Local-traffic-policy frontend with no endpoint on this node */
	TP_DROP_NAT = 139,            /* a translation or a refusal could not be written into the packet */
	TP_DROP_FAIL_CLOSED = 140,    /* the endpoint failed closed: the policy entries it needs did not fit (a full map) */

	TP_REASON_MAX = 256,
};

#endif
