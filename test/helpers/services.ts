/**
 * The agent's side of the service tests: builders for stored Services and registered
 * pods, and the one way tests fill a datapath with them — the agent's own compilers
 * (policy `compile`, `compileServices` with a BackendIds) and map writers
 * (`dp.maps.sync`, `dp.services.sync`, `dp.setLbSeed`). The independent model
 * (service-model.ts) never uses this file.
 */
import { compile } from '../../src/policy/compile.js';
import type { NetworkPolicy } from '../../src/policy/types.js';
import { BackendIds } from '../../src/services/backend-ids.js';
import { compileServices } from '../../src/services/compile.js';
import { MAGLEV_DEFAULT_MAX_SIZE } from '../../src/services/maglev.js';
import type { Service, ServicePort } from '../../src/services/types.js';
import type { NodeDatapath } from '../../src/datapath/node-datapath.js';
import type { PodRecord } from '../../src/store/schema.js';
import { desiredInputOf, type ModelCluster } from './model.js';
import type { SmCluster } from './service-model.js';

export interface SvcNode {
  name: string;
  addresses: string[];
  podCIDRs: string[];
}

/** Everything a node's service and policy maps are compiled from. */
export interface SvcCluster {
  /** The node under test: its datapath holds the local pods. */
  node: string;
  nodes: SvcNode[];
  namespaces: { name: string; labels: Record<string, string> }[];
  pods: PodRecord[];
  services: Service[];
  policies: NetworkPolicy[];
  seed: number;
}

export function pod(
  namespace: string,
  name: string,
  node: string,
  ip: string,
  labels: Record<string, string>,
  o: Partial<Pick<PodRecord, 'ports' | 'ready' | 'terminating'>> = {},
): PodRecord {
  return { v: 1, namespace, name, node, labels, ips: [ip], ifname: `veth-${name}`, ports: o.ports ?? [], ready: o.ready ?? true, ...(o.terminating ? { terminating: true } : {}) };
}

/** A stored Service (every allocation made): ports need their `id`. */
export function service(
  namespace: string,
  name: string,
  clusterIP: string,
  selector: Record<string, string>,
  ports: (Partial<ServicePort> & Pick<ServicePort, 'port' | 'id'>)[],
  o: Partial<Service> = {},
): Service {
  const full = ports.map((p): ServicePort => ({ protocol: 'TCP', targetPort: p.port, ...p }));
  const affinity = o.sessionAffinity ?? 'None';
  return {
    kind: 'Service',
    apiVersion: 'v1',
    namespace,
    name,
    type: full.some((p) => p.nodePort !== undefined) ? 'NodePort' : 'ClusterIP',
    selector,
    clusterIPs: [clusterIP],
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    ports: full,
    externalIPs: [],
    loadBalancerIngress: [],
    sessionAffinity: affinity,
    sessionAffinityTimeoutSeconds: affinity === 'ClientIP' ? 10800 : 0,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    allocateLoadBalancerNodePorts: true,
    publishNotReadyAddresses: false,
    source: { file: 'test.yaml', line: 1 },
    ...o,
  };
}

/** The policy compiler's view of the cluster (test/helpers/model.ts bridges it). */
export function policyCluster(c: SvcCluster): ModelCluster {
  return {
    localNode: c.node,
    nodes: c.nodes,
    namespaces: c.namespaces,
    pods: c.pods.map((p) => ({ namespace: p.namespace, name: p.name, node: p.node, labels: p.labels, ips: p.ips })),
    policies: c.policies,
  };
}

/** The same cluster for the independent model. */
export function modelCluster(c: SvcCluster): SmCluster {
  return { node: c.node, nodes: c.nodes, services: c.services, pods: c.pods, seed: c.seed, maxTableSize: MAGLEV_DEFAULT_MAX_SIZE };
}

/**
 * Writes a cluster into a datapath the way the agent does: policy maps, the seed, then
 * the service maps (backend ids kept in `ids` across calls, as an agent keeps them).
 */
export function loadCluster(dp: NodeDatapath, c: SvcCluster, ids: BackendIds): void {
  dp.maps.sync(compile(desiredInputOf(policyCluster(c)).input));
  dp.setLbSeed(c.seed);
  dp.services.sync(
    compileServices({
      node: c.node,
      services: c.services,
      pods: c.pods,
      seed: c.seed,
      maxTableSize: MAGLEV_DEFAULT_MAX_SIZE,
      backendIds: ids,
      currentTableSize: (id) => dp.services.luts.table(id)?.length,
    }),
  );
}

/** Forgets connections, fragments and affinities: a case starts from empty datapath state. */
export function clearState(dp: NodeDatapath): void {
  for (const k of [...dp.ct.raw.keys()]) dp.ct.raw.delete(k);
  for (const k of [...dp.frag.raw.keys()]) dp.frag.raw.delete(k);
  for (const k of [...dp.affinity.raw.keys()]) dp.affinity.raw.delete(k);
}

export { BackendIds };
