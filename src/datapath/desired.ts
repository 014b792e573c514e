/**
 * What the agent wants the node's maps to hold, as plain codec values: the output type
 * of the compilers above this layer (policy, services) and the input of the diff writer
 * (sync.ts). Lives here, below them, so the datapath never imports a compiler.
 */
import type { TpBackend, TpEndpoint, TpIpcacheValue, TpIpcidrKey, TpIpKey, TpPolicyKey, TpPolicyValue, TpSvcKey, TpSvcValue } from './structs.js';

export interface Entry<K, V> {
  key: K;
  value: V;
  /** The entry's bytes, when its compiler encoded it already (the writer then skips encoding). */
  raw?: { key: Buffer; value: Buffer; hex: string };
}

/** What a rule id in a policy entry (and in conntrack) stands for, for operators reading verdicts. */
export interface RuleInfo {
  id: number;
  /** `NetworkPolicy x/allow-web ingress[0]` */
  description: string;
  /** The policy and rule, as `observe` names them. */
  policy: PolicyRef;
}

/**
 * A policy (and one of its rules) as verdict events name it: a NetworkPolicy rule as
 * `ingress[i]` / `egress[i]`, a cluster policy's rule by its name (else its place), the
 * node's own allowance as kind `tcplane`; `rule` null where the policy as a whole
 * decided (its isolation, for a default deny).
 */
export interface PolicyRef {
  kind: string;
  namespace: string | null;
  name: string;
  rule: string | null;
}

/** The NetworkPolicies that isolate a local endpoint in one direction (what a default deny names). */
export interface Isolation {
  endpointId: number;
  direction: 'ingress' | 'egress';
  policies: PolicyRef[];
}

/** The endpoint, ipcache and policy maps: identities and what each local pod admits. */
export interface PolicyMaps {
  endpoints: Entry<TpIpKey, TpEndpoint>[];
  ipcache: Entry<TpIpKey, TpIpcacheValue>[];
  ipcidr: Entry<TpIpcidrKey, TpIpcacheValue>[];
  policy: Entry<TpPolicyKey, TpPolicyValue>[];
  /** Rule ids that appear in policy entries. */
  rules: RuleInfo[];
  /** Every local endpoint's isolating NetworkPolicies, per direction isolated. */
  isolation: Isolation[];
}

/** One service's part of the service maps: the same object as long as the service compiles the same. */
export interface ServiceGroup {
  frontends: Entry<TpSvcKey, TpSvcValue>[];
  backends: Entry<number, TpBackend>[];
  luts: [lutId: number, table: Uint32Array][];
}

/** The service maps: frontends, their Maglev tables, and the backends the tables name. */
export interface ServiceMaps {
  frontends: Entry<TpSvcKey, TpSvcValue>[];
  /** Backend id (index in tp_backends_v1) → backend. */
  backends: Entry<number, TpBackend>[];
  /** lut_id → the Maglev table: one backend id per slot. */
  luts: ReadonlyMap<number, Uint32Array>;
  /**
   * The same contents per service (`namespace/name`): the writer compares only the groups
   * that are new objects since its last write (a change touches only its services).
   */
  groups: ReadonlyMap<string, ServiceGroup>;
}
