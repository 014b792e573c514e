/** Small builders for compiler input in tests. */
import type { IdentityLabels } from '../../src/identity/labels.js';
import type { DeclaredPort, DesiredInput, LocalEndpoint } from '../../src/policy/compile.js';
import type { NetworkPolicy } from '../../src/policy/types.js';

export function netpol(namespace: string, name: string, spec: Partial<NetworkPolicy> = {}): NetworkPolicy {
  return {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    namespace,
    name,
    podSelector: { matchLabels: {}, matchExpressions: [] },
    policyTypes: ['Ingress'],
    ingress: [],
    egress: [],
    source: { file: 'test.yaml', line: 1 },
    ...spec,
  };
}

export interface PodSpec {
  ns: string;
  name: string;
  ip: string;
  labels: Record<string, string>;
  identity: number;
  local?: { id: number; ifindex?: number };
  /** The ports it declares (named ports in rules resolve against them). */
  ports?: DeclaredPort[];
}

/** Compiler input for a set of pods and policies; namespace labels default to the name label. */
export function inputOf(pods: PodSpec[], policies: NetworkPolicy[], nsLabels: Record<string, Record<string, string>> = {}): DesiredInput {
  const identities = new Map<number, IdentityLabels>();
  for (const p of pods) {
    identities.set(p.identity, {
      namespace: p.ns,
      pod: p.labels,
      namespaceLabels: nsLabels[p.ns] ?? { 'kubernetes.io/metadata.name': p.ns },
    });
  }
  const localEndpoints: LocalEndpoint[] = pods
    .filter((p) => p.local)
    .map((p) => ({
      key: `${p.ns}/${p.name}`,
      namespace: p.ns,
      name: p.name,
      ips: [p.ip],
      id: p.local!.id,
      ifindex: p.local!.ifindex ?? 1,
      identity: p.identity,
      labels: p.labels,
      ports: p.ports ?? [],
    }));
  return {
    node: 'n1',
    localEndpoints,
    clusterEndpoints: pods.map((p) => ({ ips: [p.ip], identity: p.identity })),
    identities,
    policies,
    nodes: [],
    hostAddresses: ['10.250.0.10'],
  };
}

/** Two nodes and namespace x, as the small datapath suites set them up (n1 local): add pods and policies. */
export const TWO_NODE_BASE = {
  localNode: 'n1',
  nodes: [
    { name: 'n1', addresses: ['10.250.0.10'], podCIDRs: ['10.244.1.0/24'] },
    { name: 'n2', addresses: ['10.250.0.11'], podCIDRs: ['10.244.2.0/24'] },
  ],
  namespaces: [{ name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } }],
};
