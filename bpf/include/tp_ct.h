/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_CT_H
#define TP_CT_H

#include "tp_common.h"

/*
 * tp_ct_v2: LRU hash, struct tp_ct_key → struct tp_ct_entry.
 *
 * One entry per connection per endpoint, keyed from the pod's side: its own address and
 * port, the peer's address and port. A packet in either direction builds the same key
 * (into the pod: pod = destination; out of the pod: pod = source), so one lookup finds
 * the connection, and the entry's `opened` tells a packet of the opening direction from
 * a reply. endpoint_id in the key means two pods on one node never share an entry: A's
 * egress entry cannot let a packet past B's ingress policy.
 *
 * Ports are in network order. ICMP echo request and reply put the echo identifier in
 * both ports.
 *
 * A connection to a service frontend has two entries on the client's endpoint, so that
 * each of its packets still costs one lookup (see enum tp_ct_nat):
 *   client ↔ frontend  nat = TP_CT_NAT_DNAT: the client's packets are sent to the backend
 *   client ↔ backend   nat = TP_CT_NAT_RNAT: the backend's replies appear to come from
 *                      the frontend
 * The two are twins: each names the other's peer (backend_*, frontend_*), so a change of
 * flags or lifetime in one is copied to the other (at most once per tp_ct_refresh_ns).
 *
 * Traffic from outside the cluster to a NodePort, external or load balancer IP is
 * translated on the node's uplink; its entries carry TP_CT_F_EXTERNAL and endpoint_id
 * TP_CT_EP_UPLINK, and are keyed from the node's side:
 *   frontend ↔ client  DNAT: the client's packets go to the backend
 *   backend ↔ client   RNAT: a local backend's replies leave with the frontend as source
 *                      (applied by tp_from_pod, when the backend's own entry, opened
 *                      from outside, carries TP_CT_F_OUTSIDE)
 * A backend on another node is reached through SNAT (TP_CT_F_SNAT), so its replies come
 * back through this node: the connection leaves from the node's address and a port
 * chosen for it (nat_addr, nat_port of the DNAT entry), and the RNAT entry is keyed
 *   node address:port ↔ backend, its replies sent back to the client (nat_addr, nat_port).
 */
struct tp_ct_key {
	__u8 pod_addr[16];
	__u8 peer_addr[16];
	__u16 pod_port;
	__u16 peer_port;
	__u32 endpoint_id;
	__u8 protocol;
	__u8 family;
	__u8 pad[2];
};

/*
 * expires_ns:  bpf_ktime_get_coarse_ns() after which the entry is treated as absent
 * rule_id:     rule that allowed the connection (0: endpoint default)
 * policy_gen:  the endpoint's policy generation (tp_endpoint.policy_gen, 16 bits of
 *              it) the connection was last judged under
 * service_id:  the service port the connection came through (reverse-NAT index); 0: none
 * backend_id:  TP_CT_NAT_DNAT: index of the chosen backend in tp_backends_v1
 * flags:       TP_CT_F_*
 * opened:      direction of the packet that opened the connection (enum tp_direction)
 * nat:         enum tp_ct_nat
 * audit:       reserved: 1 once audit mode let the connection through (written 0)
 * frontend_addr/port: the service address and port the client used (network order)
 * backend_addr/port:  the backend the connection was sent to (network order)
 * nat_addr/port:      TP_CT_F_SNAT only: the DNAT entry's source after SNAT (the node's
 *                     address and port), the RNAT entry's client (where replies go);
 *                     in a pod's entry with a route (below), nat_addr is the next hop
 * route:       a pod's entry: enum tp_ct_route, how the pod's packets of the connection
 *              leave the node (lib/forward.h); 0 (the stack's way) in entries of the
 *              uplink, of an earlier build, or without a route out of the uplink
 * key_tag:     a digest of the entry's own key (tp_ct_key_tag; 0 in entries the agent
 *              or an earlier build wrote): a new connection takes an entry over in
 *              place only when it is still its key's (lib/conntrack.h, tp_ct_create)
 * 88 bytes, no implicit padding.
 */
struct tp_ct_entry {
	__u64 expires_ns;
	__u32 rule_id;
	__u32 policy_gen;
	__u32 service_id;
	__u32 backend_id;
	__u8 flags;
	__u8 opened;
	__u8 nat;
	__u8 audit;
	__u16 frontend_port;
	__u16 backend_port;
	__u8 frontend_addr[16];
	__u8 backend_addr[16];
	__u8 nat_addr[16];
	__u16 nat_port;
	__u8 route;
	__u8 pad;
	__u32 key_tag;
};

enum tp_ct_flags {
	TP_CT_F_SEEN_REPLY = 1, /* a reply was seen: TCP gets the established lifetime */
	TP_CT_F_CLOSING = 2,    /* FIN or RST seen: short lifetime */
	TP_CT_F_HAIRPIN = 4,    /* a pod reaching itself through a service (see enum tp_ct_nat) */
	TP_CT_F_AFFINITY = 8,   /* DNAT through a service with ClientIP affinity: traffic refreshes it */
	TP_CT_F_EXTERNAL = 16,  /* translated on the uplink, for a client outside the cluster */
	TP_CT_F_SNAT = 32,      /* external, to a backend on another node: source-translated too */
	TP_CT_F_AFFINITY_LOCAL = 64, /* with TP_CT_F_AFFINITY: the affinity is of scope TP_AFFINITY_LOCAL */
	TP_CT_F_OUTSIDE = 128,  /* a pod's entry opened by a peer that is no pod (outside the cluster, a node): its
				 * replies may owe the uplink's reverse NAT, which tp_from_pod then looks up */
};

/*
 * How a pod's packets of a connection leave the node (tp_ct_entry.route): through the
 * node's stack, or straight out of the uplink to the next hop in nat_addr, of either
 * family (an IPv4 route may have an IPv6 gateway).
 */
enum tp_ct_route {
	TP_CT_ROUTE_STACK = 0,
	TP_CT_ROUTE_UPLINK4 = 1,
	TP_CT_ROUTE_UPLINK6 = 2,
};

/* endpoint_id of the uplink's entries (pods use their veth's ifindex). */
enum tp_ct_endpoint {
	TP_CT_EP_UPLINK = 0xffffffff,
};

/*
 * What an entry rewrites.
 *   NONE  nothing
 *   DNAT  key: client ↔ frontend. Packets of the opening direction get the backend as
 *         destination. HAIRPIN (the backend is the client itself): their source address
 *         also becomes the frontend's, so the pod sees the connection come from the
 *         service address (its own address would be a martian source to its kernel).
 *         Replies pass unchanged (they arrive already translated, through the twin).
 *   RNAT  key: client ↔ backend (HAIRPIN: key pod = the backend, peer = frontend address
 *         and the client's port, opened = ingress). Replies get the frontend as source;
 *         HAIRPIN: their destination address also becomes the pod's own.
 */
enum tp_ct_nat {
	TP_CT_NAT_NONE = 0,
	TP_CT_NAT_DNAT = 1,
	TP_CT_NAT_RNAT = 2,
};

/*
 * tp_ct_v1, the layout before services (tcplane 0.1): same key, this value. Declared
 * only so an upgraded agent can adopt and migrate what an old one pinned; see
 * src/datapath/ct-migration.ts.
 */
struct tp_ct_entry_v1 {
	__u64 expires_ns;
	__u32 rule_id;
	__u8 flags;
	__u8 opened;
	__u8 pad[2];
};

#endif
