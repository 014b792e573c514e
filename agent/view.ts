/**
 * The agent's picture of the cluster, filled by the store watches, and which reconcile
 * stages each change makes stale: a service change never recompiles policy, a policy
 * change never recomputes services.
 */
import type { IdentityLabels } from '../src/identity/labels.js';
import type { PolicyDocument } from '../src/policy/types.js';
import type { BucketKind, EndpointRecord, NamespaceRecord, NodeRecord, PodRecord } from '../src/store/schema.js';

export interface View {
  pods: Map<string, PodRecord>;
  namespaces: Map<string, NamespaceRecord>;
  policies: Map<string, PolicyDocument>;
  endpoints: Map<string, EndpointRecord>;
  identities: Map<number, IdentityLabels>;
  nodes: Map<string, NodeRecord>;
}

export function emptyView(): View {
  return { pods: new Map(), namespaces: new Map(), policies: new Map(), endpoints: new Map(), identities: new Map(), nodes: new Map() };
}

/**
 * The reconcile stages, in the order they run:
 *   endpoints  identities for local pods (KV create) and their published endpoint records
 *   policy     compile identities and policies into the endpoint, ipcache and policy maps
 */
export type Stage = 'endpoints' | 'policy';
export const STAGES: readonly Stage[] = ['endpoints', 'policy'];

/** What a change in each watched bucket makes stale. */
export const STALE_AFTER: Partial<Record<BucketKind, readonly Stage[]>> = {
  pods: ['endpoints', 'policy'],
  namespaces: ['endpoints', 'policy'],
  identities: ['endpoints', 'policy'],
  endpoints: ['endpoints', 'policy'],
  nodes: ['policy'],
  policies: ['policy'],
};
