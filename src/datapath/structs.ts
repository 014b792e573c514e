/**
 * Codecs of the structs shared with the BPF programs, one per C struct, fields in the
 * C order with padding written out. Checked field by field against the compiled
 * object's BTF by test/datapath/layout.test.ts.
 */
import { be16, bytes, pad, scalar, struct, u16, u32, u64, u8, type Infer } from '../codec/struct.js';

/** A `__u32` key: array indexes and ids. */
export const u32Key = scalar('__u32', u32);

/** bpf/include/tp_addr.h: struct tp_ip_key */
export const tpIpKey = struct('tp_ip_key', {
  family: u8,
  pad: pad(3),
  addr: bytes(16),
});
export type TpIpKey = Infer<typeof tpIpKey>;

/** bpf/include/tp_endpoint.h: struct tp_endpoint */
export const tpEndpoint = struct('tp_endpoint', {
  id: u32,
  identity: u32,
  ifindex: u32,
  ingress_default: u8,
  egress_default: u8,
  policy_gen: u16,
});
export type TpEndpoint = Infer<typeof tpEndpoint>;

/** bpf/include/tp_ipcache.h: struct tp_ipcache_value */
export const tpIpcacheValue = struct('tp_ipcache_value', {
  identity: u32,
});
export type TpIpcacheValue = Infer<typeof tpIpcacheValue>;

/** bpf/include/tp_ipcache.h: struct tp_ipcidr_key */
export const tpIpcidrKey = struct('tp_ipcidr_key', {
  prefixlen: u32,
  family: u8,
  pad: pad(3),
  addr: bytes(16),
});
export type TpIpcidrKey = Infer<typeof tpIpcidrKey>;

/** bpf/include/tp_policy.h: struct tp_policy_key */
export const tpPolicyKey = struct('tp_policy_key', {
  prefixlen: u32,
  endpoint_id: u32,
  identity: u32,
  direction: u8,
  protocol: u8,
  dport: be16,
});
export type TpPolicyKey = Infer<typeof tpPolicyKey>;

/** bpf/include/tp_policy.h: struct tp_policy_value */
export const tpPolicyValue = struct('tp_policy_value', {
  verdict: u8,
  pad: pad(3),
  rule_id: u32,
});
export type TpPolicyValue = Infer<typeof tpPolicyValue>;

/** bpf/include/tp_ct.h: struct tp_ct_key */
export const tpCtKey = struct('tp_ct_key', {
  pod_addr: bytes(16),
  peer_addr: bytes(16),
  pod_port: be16,
  peer_port: be16,
  endpoint_id: u32,
  protocol: u8,
  family: u8,
  pad: pad(2),
});
export type TpCtKey = Infer<typeof tpCtKey>;

/** bpf/include/tp_ct.h: struct tp_ct_entry (tp_ct_v2) */
export const tpCtEntry = struct('tp_ct_entry', {
  expires_ns: u64,
  rule_id: u32,
  policy_gen: u32,
  service_id: u32,
  backend_id: u32,
  flags: u8,
  opened: u8,
  nat: u8,
  audit: u8,
  frontend_port: be16,
  backend_port: be16,
  frontend_addr: bytes(16),
  backend_addr: bytes(16),
  nat_addr: bytes(16),
  nat_port: be16,
  route: u8,
  pad: pad(1),
  key_tag: u32,
});
export type TpCtEntry = Infer<typeof tpCtEntry>;

/** bpf/include/tp_ct.h: struct tp_ct_entry_v1 (tp_ct_v1, tcplane 0.1; read only to migrate) */
export const tpCtEntryV1 = struct('tp_ct_entry_v1', {
  expires_ns: u64,
  rule_id: u32,
  flags: u8,
  opened: u8,
  pad: pad(2),
});
export type TpCtEntryV1 = Infer<typeof tpCtEntryV1>;

/** bpf/include/tp_config.h: struct tp_config */
export const tpConfig = struct('tp_config', {
  lb_seed: u32,
  ct_legacy: u8,
  pad: pad(3),
  uplink_ifindex: u32,
  node_addr4: bytes(4),
  node_addr6: bytes(16),
});
export type TpConfig = Infer<typeof tpConfig>;

/** bpf/include/tp_frag.h: struct tp_frag_key */
export const tpFragKey = struct('tp_frag_key', {
  family: u8,
  protocol: u8,
  pad: pad(2),
  id: u32,
  saddr: bytes(16),
  daddr: bytes(16),
});
export type TpFragKey = Infer<typeof tpFragKey>;

/** bpf/include/tp_frag.h: struct tp_frag_ports */
export const tpFragPorts = struct('tp_frag_ports', {
  sport: be16,
  dport: be16,
  protocol: u8,
  pad: pad(3),
});
export type TpFragPorts = Infer<typeof tpFragPorts>;

/** bpf/include/tp_service.h: struct tp_svc_key */
export const tpSvcKey = struct('tp_svc_key', {
  family: u8,
  protocol: u8,
  port: be16,
  origin: u8,
  nodeport: u8,
  pad: pad(2),
  addr: bytes(16),
});
export type TpSvcKey = Infer<typeof tpSvcKey>;

/** bpf/include/tp_service.h: struct tp_svc_value */
export const tpSvcValue = struct('tp_svc_value', {
  service_id: u32,
  lut_id: u32,
  lut_size: u32,
  affinity_timeout_s: u32,
  empty: u8,
  affinity_scope: u8,
  pad: pad(2),
});
export type TpSvcValue = Infer<typeof tpSvcValue>;

/** bpf/include/tp_service.h: struct tp_backend */
export const tpBackend = struct('tp_backend', {
  service_id: u32,
  family: u8,
  protocol: u8,
  port: be16,
  state: u8,
  pad: pad(3),
  addr: bytes(16),
});
export type TpBackend = Infer<typeof tpBackend>;

/** bpf/include/tp_service.h: struct tp_affinity_key */
export const tpAffinityKey = struct('tp_affinity_key', {
  service_id: u32,
  family: u8,
  scope: u8,
  pad: pad(2),
  client: bytes(16),
});
export type TpAffinityKey = Infer<typeof tpAffinityKey>;

/** bpf/include/tp_service.h: struct tp_affinity_value */
export const tpAffinityValue = struct('tp_affinity_value', {
  used_ns: u64,
  backend_id: u32,
  pad: pad(4),
});
export type TpAffinityValue = Infer<typeof tpAffinityValue>;

/** bpf/include/tp_metrics.h: struct tp_metrics_value */
export const tpMetricsValue = struct('tp_metrics_value', {
  packets: u64,
  bytes: u64,
});
export type TpMetricsValue = Infer<typeof tpMetricsValue>;

/** Every shared struct, for the layout test. */
/** bpf/include/tp_policy.h: struct tp_rule_counter */
export const tpRuleCounter = struct('tp_rule_counter', {
  packets: u64,
  bytes: u64,
});
export type TpRuleCounter = Infer<typeof tpRuleCounter>;

/** bpf/include/tp_event.h: struct tp_event (a record of the tp_events_v1 ring buffer) */
export const tpEvent = struct('tp_event', {
  time_ns: u64,
  saddr: bytes(16),
  daddr: bytes(16),
  xaddr: bytes(16),
  sport: be16,
  dport: be16,
  xport: be16,
  family: u8,
  protocol: u8,
  endpoint_id: u32,
  identity: u32,
  peer_identity: u32,
  reason: u32,
  rule_id: u32,
  suppressed: u32,
  direction: u8,
  hook: u8,
  flags: u8,
  tcp_flags: u8,
  service_id: u32,
});
export type TpEvent = Infer<typeof tpEvent>;

/** bpf/include/tp_event.h: struct tp_event_stats */
export const tpEventStats = struct('tp_event_stats', {
  emitted: u64,
  suppressed: u64,
  lost: u64,
});
export type TpEventStats = Infer<typeof tpEventStats>;

/** bpf/include/tp_event.h: struct tp_event_budget (datapath-only; here for the layout check) */
export const tpEventBudget = struct('tp_event_budget', {
  window_ns: u64,
  count: u32,
  suppressed: u32,
});

export const SHARED_STRUCTS = [
  tpIpKey,
  tpEndpoint,
  tpIpcacheValue,
  tpIpcidrKey,
  tpPolicyKey,
  tpPolicyValue,
  tpCtKey,
  tpCtEntry,
  tpCtEntryV1,
  tpConfig,
  tpFragKey,
  tpFragPorts,
  tpSvcKey,
  tpSvcValue,
  tpBackend,
  tpAffinityKey,
  tpAffinityValue,
  tpMetricsValue,
  tpRuleCounter,
  tpEvent,
  tpEventStats,
  tpEventBudget,
] as const;
