/**
 * Codecs of the structs shared with the BPF programs, one per C struct, fields in the
 * C order with padding written out. Checked field by field against the compiled
 * object's BTF by test/datapath/layout.test.ts.
 */
import { be16, bytes, pad, struct, u32, u64, u8, type Infer } from '../codec/struct.js';

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
  pad: pad(2),
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

/** bpf/include/tp_ct.h: struct tp_ct_entry */
export const tpCtEntry = struct('tp_ct_entry', {
  expires_ns: u64,
  rule_id: u32,
  flags: u8,
  opened: u8,
  pad: pad(2),
});
export type TpCtEntry = Infer<typeof tpCtEntry>;

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

/** bpf/include/tp_metrics.h: struct tp_metrics_value */
export const tpMetricsValue = struct('tp_metrics_value', {
  packets: u64,
  bytes: u64,
});
export type TpMetricsValue = Infer<typeof tpMetricsValue>;

/** Every shared struct, for the layout test. */
export const SHARED_STRUCTS = [
  tpIpKey,
  tpEndpoint,
  tpIpcacheValue,
  tpIpcidrKey,
  tpPolicyKey,
  tpPolicyValue,
  tpCtKey,
  tpCtEntry,
  tpFragKey,
  tpFragPorts,
  tpMetricsValue,
] as const;
