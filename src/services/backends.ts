/**
 * Which pods back each port of a service: the service's selector over every registered
 * pod of its namespace, cluster-wide, with targetPort resolved against each pod. Agents
 * program these; `get services` shows them. Shared so both always agree.
 *
 * A pod is a backend of a port when it matches the selector, has an address of one of
 * the service's families (a backend per family: a dual-stack pod backs a dual-stack
 * service twice, once per address), and — for a named targetPort — declares a port of
 * that name and protocol (two pods may map one name to different numbers). Its state:
 *   ready        takes new connections
 *   terminating  shutting down but still serving: keeps its connections, and takes new
 *                ones only when no backend of the set is ready (as kube-proxy does)
 *   unready      not ready: no new connections; keeps TCP connections it has
 * publishNotReadyAddresses makes every selected pod ready.
 */
import type { PodRecord } from '../store/schema.js';
import { familyOfAddress } from './schema.js';
import type { IPFamily, Service, ServicePort } from './types.js';

export type BackendState = 'ready' | 'terminating' | 'unready';

export interface Backend {
  /** `namespace/name` */
  pod: string;
  node: string;
  /** The pod's address of one of the service's families. */
  ip: string;
  port: number;
  protocol: ServicePort['protocol'];
  /** The service port this backend serves. */
  servicePort: number;
  state: BackendState;
}

/** The name a backend goes by in Maglev permutations: the same on every node. */
export const maglevName = (b: Backend) => `${b.pod} ${b.ip}:${b.port}/${b.protocol}`;

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * publishNotReadyAddresses comes first: it publishes terminating pods as ready too (the
 * EndpointSlice controller sets ready = publishNotReadyAddresses || (serving && !terminating)).
 */
function stateOf(pod: PodRecord, svc: Service): BackendState {
  if (svc.publishNotReadyAddresses) return 'ready';
  if (pod.terminating) return 'terminating';
  return pod.ready ? 'ready' : 'unready';
}

/** The pod's port for a service port's targetPort, or undefined when it has none. */
export function resolveTargetPort(port: ServicePort, pod: Pick<PodRecord, 'ports'>): number | undefined {
  if (typeof port.targetPort === 'number') return port.targetPort;
  return pod.ports.find((p) => p.name === port.targetPort && p.protocol === port.protocol)?.port;
}

/** The families a service has backends in: its ipFamilies, or those of its cluster IPs (a record from before dual-stack). */
export function serviceFamilies(svc: Pick<Service, 'ipFamilies' | 'clusterIPs'>): IPFamily[] {
  if (svc.ipFamilies.length > 0) return svc.ipFamilies;
  const fromIPs = svc.clusterIPs.filter((ip) => ip !== 'None').map(familyOfAddress);
  return fromIPs.length > 0 ? fromIPs : ['IPv4'];
}

/** Every backend of every port of svc, in port order, each list sorted by pod (a pod's families in the service's order). */
export function serviceBackends(svc: Service, pods: Iterable<PodRecord>): Backend[][] {
  const selected: PodRecord[] = [];
  for (const pod of pods) {
    if (pod.namespace === svc.namespace && selects(svc.selector, pod.labels)) selected.push(pod);
  }
  selected.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const families = serviceFamilies(svc);
  return svc.ports.map((port) => {
    const out: Backend[] = [];
    for (const pod of selected) {
      const target = resolveTargetPort(port, pod);
      if (target === undefined) continue;
      for (const family of families) {
        const ip = pod.ips.find((a) => familyOfAddress(a) === family);
        if (!ip) continue;
        out.push({ pod: `${pod.namespace}/${pod.name}`, node: pod.node, ip, port: target, protocol: port.protocol, servicePort: port.port, state: stateOf(pod, svc) });
      }
    }
    return out;
  });
}

/**
 * The backends that take new connections among `backends`: the ready ones, or, when
 * none is ready, the terminating ones (still serving), so a service whose every pod is
 * shutting down keeps answering rather than going dark.
 */
export function usableBackends(backends: readonly Backend[]): Backend[] {
  const ready = backends.filter((b) => b.state === 'ready');
  return ready.length > 0 ? ready : backends.filter((b) => b.state === 'terminating');
}
