/**
 * What the agent wants the node's maps to hold, as plain codec values: the output type
 * of the compilers above this layer (policy, services) and the input of the diff writer
 * (sync.ts). Lives here, below them, so the datapath never imports a compiler.
 */
import type { TpBackend, TpEndpoint, TpIpcacheValue, TpIpcidrKey, TpIpKey, TpPolicyKey, TpPolicyValue, TpSvcKey, TpSvcValue } from './structs.js';

export interface Entry<K, V> {
  key: K;
  value: V;
}

/** What a rule id in a policy entry (and in conntrack) stands for, for operators reading verdicts. */
export interface RuleInfo {
  id: number;
  /** `NetworkPolicy x/allow-web ingress[0]` */
  description: string;
}

/** The endpoint, ipcache and policy maps: identities and what each local pod admits. */
export interface PolicyMaps {
  endpoints: Entry<TpIpKey, TpEndpoint>[];
  ipcache: Entry<TpIpKey, TpIpcacheValue>[];
  ipcidr: Entry<TpIpcidrKey, TpIpcacheValue>[];
  policy: Entry<TpPolicyKey, TpPolicyValue>[];
  /** Rule ids that appear in policy entries. */
  rules: RuleInfo[];
}

/** The service maps: frontends, their Maglev tables, and the backends the tables name. */
export interface ServiceMaps {
  frontends: Entry<TpSvcKey, TpSvcValue>[];
  /** Backend id (index in tp_backends_v1) → backend. */
  backends: Entry<number, TpBackend>[];
  /** lut_id → the Maglev table: one backend id per slot. */
  luts: ReadonlyMap<number, Uint32Array>;
}
