/**
 * The endpoints stage: this node's pods, each with its security identity and veth, and
 * the endpoint records other nodes learn them from. A pod is an endpoint whether or not
 * it is ready (readiness only decides whether it backs services, as in Kubernetes).
 */
import type { Logger } from 'pino';
import { ifindexOf } from '../src/bpf/link.js';
import type { IdentityAllocator } from '../src/identity/allocator.js';
import type { IdentityLabels } from '../src/identity/labels.js';
import type { LocalEndpoint } from '../src/policy/compile.js';
import type { EndpointRecord } from '../src/store/schema.js';
import type { Store } from '../src/store/store.js';
import type { View } from './view.js';

export interface LocalEndpoints {
  endpoints: LocalEndpoint[];
  /** Local pods not enforced yet (no identity, no veth): the agent retries. */
  pending: Set<string>;
}

/** Resolves identities and interfaces of the node's pods; publishes their endpoint records. */
export async function reconcileLocalEndpoints(
  node: string,
  view: View,
  allocator: IdentityAllocator,
  store: Store,
  log: Logger,
): Promise<LocalEndpoints> {
  const endpoints: LocalEndpoint[] = [];
  const pending = new Set<string>();
  for (const [key, pod] of view.pods) {
    if (pod.node !== node) continue;
    const labels: IdentityLabels = {
      namespace: pod.namespace,
      pod: pod.labels,
      namespaceLabels: view.namespaces.get(pod.namespace)?.labels ?? {},
    };
    let identity: number;
    try {
      identity = await allocator.resolve(labels);
    } catch (err) {
      // A corrupt claim (or a store hiccup) for this label set must not stop every
      // other pod: keep the identity this pod was published with, else wait for it.
      const published = view.endpoints.get(key);
      log.error({ pod: key, err: (err as Error).message, keeping: published?.identity ?? null }, 'identity not resolved');
      if (!published || published.node !== node) {
        pending.add(key);
        continue;
      }
      identity = published.identity;
    }
    if (!view.identities.has(identity)) view.identities.set(identity, labels);
    let ifindex: number;
    try {
      ifindex = ifindexOf(pod.ifname);
    } catch {
      log.warn({ pod: key, ifname: pod.ifname }, 'pod interface not found yet');
      pending.add(key);
      continue;
    }
    endpoints.push({ key, namespace: pod.namespace, name: pod.name, ips: pod.ips, id: ifindex, ifindex, identity, labels: pod.labels, ports: pod.ports });
  }
  await publish(node, endpoints, pending, view, store);
  return { endpoints, pending };
}

/** Publishes local endpoints; withdraws ours that have no pod any more. */
async function publish(node: string, local: LocalEndpoint[], pending: Set<string>, view: View, store: Store): Promise<void> {
  const localKeys = new Set(local.map((e) => e.key));
  for (const e of local) {
    const rec: EndpointRecord = { v: 1, namespace: e.namespace, name: e.name, node, ips: e.ips, identity: e.identity };
    const have = view.endpoints.get(e.key);
    if (!have || have.identity !== rec.identity || have.node !== node || have.ips.join() !== rec.ips.join()) {
      await store.put('endpoints', e.key, rec);
      view.endpoints.set(e.key, rec);
    }
  }
  for (const [key, rec] of view.endpoints) {
    if (rec.node === node && !localKeys.has(key) && !pending.has(key)) {
      await store.delete('endpoints', key);
      view.endpoints.delete(key);
    }
  }
}
