/**
 * What the agent wants the node's maps to hold, as plain codec values: the output type
 * of the compilers above this layer (policy, services) and the input of the diff writer
 * (sync.ts). Lives here, below them, so the datapath never imports a compiler.
 */
import type { TpEndpoint, TpIpcacheValue, TpIpcidrKey, TpIpKey, TpPolicyKey, TpPolicyValue } from './structs.js';

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
