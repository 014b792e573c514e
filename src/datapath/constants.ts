/**
 * Mirrors of the enums in bpf/include/tp_common.h, tp_reasons.h and friends. Checked
 * against the compiled object's BTF by test/datapath/layout.test.ts; never renumber.
 * Keys are the C enumerator names.
 */

export const TP_FAMILY = { TP_FAMILY_IPV4: 4, TP_FAMILY_IPV6: 6 } as const;

export const TP_DIRECTION = { TP_DIR_INGRESS: 0, TP_DIR_EGRESS: 1 } as const;
export const DIR_INGRESS = TP_DIRECTION.TP_DIR_INGRESS;
export const DIR_EGRESS = TP_DIRECTION.TP_DIR_EGRESS;
export type Direction = typeof DIR_INGRESS | typeof DIR_EGRESS;

export const TP_VERDICT = { TP_VERDICT_NONE: 0, TP_VERDICT_ALLOW: 1, TP_VERDICT_DENY: 2, TP_VERDICT_AUDIT: 3, TP_VERDICT_CLOSED: 4 } as const;
export const VERDICT_ALLOW = TP_VERDICT.TP_VERDICT_ALLOW;
export const VERDICT_DENY = TP_VERDICT.TP_VERDICT_DENY;
/** Audit mode: passes, reported as what a policy would have denied. */
export const VERDICT_AUDIT = TP_VERDICT.TP_VERDICT_AUDIT;
/** An endpoint default only: its entries did not fit, so it admits nothing (src/datapath/capacity.ts). */
export const VERDICT_CLOSED = TP_VERDICT.TP_VERDICT_CLOSED;

export const TP_RESERVED_IDENTITY = {
  TP_IDENTITY_ANY: 0,
  TP_IDENTITY_HOST: 1,
  TP_IDENTITY_WORLD: 2,
  TP_IDENTITY_UNMANAGED: 3,
  TP_IDENTITY_REMOTE_NODE: 6,
  TP_IDENTITY_FIRST_ALLOCATED: 256,
  TP_IDENTITY_LOCAL: 0x01000000,
  TP_IDENTITY_LOCAL_IN_PODS: 0x02000000,
  TP_IDENTITY_LOCAL_NODE: 0x04000000,
} as const;
export const IDENTITY = {
  ANY: TP_RESERVED_IDENTITY.TP_IDENTITY_ANY,
  HOST: TP_RESERVED_IDENTITY.TP_IDENTITY_HOST,
  WORLD: TP_RESERVED_IDENTITY.TP_IDENTITY_WORLD,
  UNMANAGED: TP_RESERVED_IDENTITY.TP_IDENTITY_UNMANAGED,
  REMOTE_NODE: TP_RESERVED_IDENTITY.TP_IDENTITY_REMOTE_NODE,
  FIRST_ALLOCATED: TP_RESERVED_IDENTITY.TP_IDENTITY_FIRST_ALLOCATED,
  /** Node-local address classes (src/policy/address-classes.ts) are LOCAL | flags | number. */
  LOCAL: TP_RESERVED_IDENTITY.TP_IDENTITY_LOCAL,
  LOCAL_IN_PODS: TP_RESERVED_IDENTITY.TP_IDENTITY_LOCAL_IN_PODS,
  LOCAL_NODE: TP_RESERVED_IDENTITY.TP_IDENTITY_LOCAL_NODE,
  LOCAL_NUMBER_MASK: 0x00ffffff,
} as const;
/** Names of reserved identities, as operators see them (Cilium's spelling). */
export const RESERVED_IDENTITY_NAMES: Record<number, string> = {
  1: 'reserved:host',
  2: 'reserved:world',
  3: 'reserved:unmanaged',
  6: 'reserved:remote-node',
};

export const TP_CT_FLAGS = {
  TP_CT_F_SEEN_REPLY: 1,
  TP_CT_F_CLOSING: 2,
  TP_CT_F_HAIRPIN: 4,
  TP_CT_F_AFFINITY: 8,
  TP_CT_F_EXTERNAL: 16,
  TP_CT_F_SNAT: 32,
  TP_CT_F_AFFINITY_LOCAL: 64,
  TP_CT_F_OUTSIDE: 128,
} as const;
export const TP_CT_ENDPOINT = { TP_CT_EP_UPLINK: 0xffffffff } as const;
export const TP_CT_NAT = { TP_CT_NAT_NONE: 0, TP_CT_NAT_DNAT: 1, TP_CT_NAT_RNAT: 2 } as const;
export const TP_CT_ROUTE = { TP_CT_ROUTE_STACK: 0, TP_CT_ROUTE_UPLINK4: 1, TP_CT_ROUTE_UPLINK6: 2 } as const;

export const TP_POLICY_PREFIX = {
  TP_POLICY_PREFIX_ANY_PROTO: 72,
  TP_POLICY_PREFIX_ANY_PORT: 80,
  TP_POLICY_PREFIX_FULL: 96,
} as const;

export const TP_IPCIDR_PREFIX = { TP_IPCIDR_PREFIX_BASE: 32 } as const;

export const TP_SVC_ORIGIN = { TP_SVC_FROM_POD: 0, TP_SVC_FROM_OUTSIDE: 1 } as const;
export const TP_SVC_EMPTY = { TP_SVC_EMPTY_REJECT: 0, TP_SVC_EMPTY_DROP: 1 } as const;
export const TP_AFFINITY_SCOPE = { TP_AFFINITY_CLUSTER: 0, TP_AFFINITY_LOCAL: 1 } as const;
export const TP_EVENT_FLAGS = { TP_EVENT_F_XLATE: 1, TP_EVENT_F_SAMPLED: 2 } as const;
export const TP_BACKEND_STATE = {
  TP_BACKEND_FREE: 0,
  TP_BACKEND_ACTIVE: 1,
  TP_BACKEND_TERMINATING: 2,
  TP_BACKEND_UNREADY: 3,
} as const;
export const TP_LB_LIMITS = { TP_LB_MAX_LUTS: 65536, TP_LB_MAX_BACKENDS: 65536 } as const;

export const TP_HOOK = { TP_HOOK_TO_POD: 0, TP_HOOK_FROM_POD: 1, TP_HOOK_FROM_UPLINK: 2, TP_HOOK_TO_UPLINK: 3, TP_HOOK_MAX: 4 } as const;
export const TP_METRICS_SIZE = { TP_METRICS_ENTRIES: 1024 } as const;

/** IP protocol numbers used in keys. */
export const PROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58, SCTP: 132 } as const;
