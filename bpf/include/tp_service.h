/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TP_SERVICE_H
#define TP_SERVICE_H

#include "tp_common.h"

/*
 * Service load balancing: frontends → a Maglev table per frontend → backends.
 *
 *   tp_svc_v1       hash, struct tp_svc_key → struct tp_svc_value: one entry per frontend
 *                   (address, port, protocol) and origin of the traffic
 *   tp_lut_v1       hash of maps, lut_id → array of lut_size __u32 backend ids: the
 *                   frontend's Maglev table; the slot of a flow is tp_flow_hash % lut_size
 *   tp_backends_v1  array, backend id → struct tp_backend (id 0 is never used)
 *   tp_affinity_v1  LRU hash, struct tp_affinity_key → struct tp_affinity_value:
 *                   ClientIP session affinity, the backend a client last used
 *
 * A table is replaced whole (one update of tp_lut_v1), so a backend change is atomic
 * for the frontend. A change of table size writes the new table under another lut_id
 * first and then repoints the frontend, so lut_size and the table always agree.
 */

/* Where the traffic a frontend entry serves comes from. */
enum tp_svc_origin {
	TP_SVC_FROM_POD = 0,     /* a local pod (its veth): ClusterIPs, and external frontends */
	TP_SVC_FROM_OUTSIDE = 1, /* the node's uplink: NodePorts, external and load balancer IPs */
};

/*
 * family, protocol: of the frontend; port: network order
 * origin:   enum tp_svc_origin
 * nodeport: 1: the frontend is `port` on every node address (addr is zero); the
 *           datapath looks it up when the destination is a node's address
 * 24 bytes, no implicit padding.
 */
struct tp_svc_key {
	__u8 family;
	__u8 protocol;
	__u16 port;
	__u8 origin;
	__u8 nodeport;
	__u8 pad[2];
	__u8 addr[16];
};

/*
 * service_id: the service port, the same on every node (reverse-NAT index, affinity key)
 * lut_id:     key of the frontend's Maglev table in tp_lut_v1
 * lut_size:   slots of that table (prime); 0: no backend to pick, `empty` says what then
 * affinity_timeout_s: ClientIP session affinity; 0: none
 * empty:      enum tp_svc_empty
 * affinity_scope: enum tp_affinity_scope, the endpoints the frontend's table draws on
 * 20 bytes, no implicit padding.
 */
struct tp_svc_value {
	__u32 service_id;
	__u32 lut_id;
	__u32 lut_size;
	__u32 affinity_timeout_s;
	__u8 empty;
	__u8 affinity_scope;
	__u8 pad[2];
};

/* What a frontend without backends does with a new connection (as kube-proxy does). */
enum tp_svc_empty {
	TP_SVC_EMPTY_REJECT = 0, /* the service has no endpoint at all: refuse at once (TCP RST, ICMP port unreachable) */
	TP_SVC_EMPTY_DROP = 1,   /* it has endpoints, but none its traffic policy (Local) allows here */
};

/*
 * A backend of one service port: where its connections are sent. One pod serving two
 * service ports is two backends, so a backend leaving one service leaves only that one.
 * service_id: the service port it serves; addr, port in network order.
 * state: enum tp_backend_state; TP_BACKEND_FREE marks an unused id.
 * 28 bytes, no implicit padding.
 */
struct tp_backend {
	__u32 service_id;
	__u8 family;
	__u8 protocol;
	__u16 port;
	__u8 state;
	__u8 pad[3];
	__u8 addr[16];
};

/*
 * Which connections a backend keeps. Only the Maglev tables decide who takes new ones;
 * this decides what happens to a connection already sent to the backend.
 */
enum tp_backend_state {
	TP_BACKEND_FREE = 0,        /* no backend: connections sent here pick another */
	TP_BACKEND_ACTIVE = 1,      /* ready */
	TP_BACKEND_TERMINATING = 2, /* shutting down but still serving: keeps its connections */
	TP_BACKEND_UNREADY = 3,     /* not ready: keeps TCP connections, other flows pick another */
};

/*
 * ClientIP affinity is kept per service port and scope: the frontends of one service port
 * that draw on the same endpoints (a ClusterIP and a NodePort under traffic policy Cluster)
 * share a client's backend, while a frontend limited to this node's endpoints (traffic
 * policy Local) keeps its own, so an affinity made through one frontend never sends a
 * connection of another to an endpoint that frontend's traffic policy excludes.
 */
enum tp_affinity_scope {
	TP_AFFINITY_CLUSTER = 0, /* the cluster's endpoints */
	TP_AFFINITY_LOCAL = 1,   /* this node's endpoints only (traffic policy Local) */
};

/* scope: enum tp_affinity_scope. 24 bytes, no implicit padding. */
struct tp_affinity_key {
	__u32 service_id;
	__u8 family;
	__u8 scope;
	__u8 pad[2];
	__u8 client[16];
};

/* used_ns: bpf_ktime_get_coarse_ns() of the client's last connection or refresh. */
struct tp_affinity_value {
	__u64 used_ns;
	__u32 backend_id;
	__u32 pad;
};

enum tp_lb_limits {
	TP_LB_MAX_LUTS = 65536,
	TP_LB_MAX_BACKENDS = 65536,
};

#endif
