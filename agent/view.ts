/**
 * The agent's picture of the cluster, filled by the store watches, and which reconcile
 * stages each change makes stale: a service change never recompiles policy, a policy
 * change never recomputes services.
 */
import type { IdentityLabels } from '../src/identity/labels.js';
import type { PolicyDocument } from '../src/policy/types.js';
import type { Service } from '../src/services/types.js';
import type { BucketKind, ClusterConfig, EndpointRecord, NamespaceRecord, NodeRecord, PodRecord } from '../src/store/schema.js';

export interface View {
  pods: Map<string, PodRecord>;
  namespaces: Map<string, NamespaceRecord>;
  policies: Map<string, PolicyDocument>;
  endpoints: Map<string, EndpointRecord>;
  identities: Map<number, IdentityLabels>;
  nodes: Map<string, NodeRecord>;
  services: Map<string, Service>;
  /** The cluster-wide settings (Maglev seed and table limit); undefined until created. */
  cluster: ClusterConfig | undefined;
}

export function emptyView(): View {
  return {
    pods: new Map(),
    namespaces: new Map(),
    policies: new Map(),
    endpoints: new Map(),
    identities: new Map(),
    nodes: new Map(),
    services: new Map(),
    cluster: undefined,
  };
}

/**
 * The reconcile stages, in the order they run:
 *   endpoints  identities for local pods (KV create) and their published endpoint records
 *   policy     compile identities and policies into the endpoint, ipcache and policy maps
 *   services   compile services and pods into frontends, Maglev tables and backends
 */
export type Stage = 'endpoints' | 'policy' | 'services';
export const STAGES: readonly Stage[] = ['endpoints', 'policy', 'services'];

/** What a change in each watched bucket makes stale. */
export const STALE_AFTER: Partial<Record<BucketKind, readonly Stage[]>> = {
  pods: ['endpoints', 'policy', 'services'],
  namespaces: ['endpoints', 'policy'],
  identities: ['endpoints', 'policy'],
  endpoints: ['endpoints', 'policy'],
  nodes: ['policy'],
  policies: ['policy'],
  services: ['services'],
  cluster: ['services'],
};
