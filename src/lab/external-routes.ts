/**
 * The lab's stand-in for a cloud load balancer: clients reach the external and load
 * balancer IPs of services (EXTERNAL_RANGE) through a node. By default the whole range
 * goes to the first node (a route `lab up` sets); a service with externalTrafficPolicy
 * Local gets its IPs routed (/32 or /128 in every client, via the node's address of the
 * IP's family; EXTERNAL_RANGE6 likewise in a dual-stack lab) to the first node whose
 * healthCheckNodePort answers 200 — the nodes with ready local backends — as a cloud
 * load balancer health-checks nodes. Refreshed at `lab up` and before every
 * `lab probe --to-service`.
 */
import type { Service } from '../services/types.js';
import { ipBatch } from './exec.js';
import { addressOf, familyOf } from './probe.js';
import type { LabState } from './state.js';

const CHECK_TIMEOUT_MS = 1000;

/** Whether a node's health check for a service answers 200 (from the root namespace, over tp-host). */
async function healthy(nodeIP: string, port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${nodeIP}:${port}/healthz`, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** The node each Local service's external IPs go to (its address of the IP's family): the first healthy one, else the first node. */
export async function externalRoutes(state: LabState, services: readonly Service[]): Promise<Map<string, string>> {
  const routes = new Map<string, string>();
  const first = state.nodes[0];
  if (!first) return routes;
  for (const s of services) {
    const ips = [...s.externalIPs, ...s.loadBalancerIngress];
    if (ips.length === 0 || s.externalTrafficPolicy !== 'Local' || s.healthCheckNodePort === undefined) continue;
    let via = first;
    for (const n of state.nodes) {
      if (await healthy(n.underlayIP, s.healthCheckNodePort)) {
        via = n;
        break;
      }
    }
    for (const ip of ips) {
      const nodeIP = addressOf(via.underlayIPs, familyOf(ip));
      if (nodeIP) routes.set(ip, nodeIP);
    }
  }
  return routes;
}

/** Routes every client's traffic to each Local service's external IPs through its healthy node. */
export async function refreshExternalRoutes(state: LabState, services: readonly Service[]): Promise<Map<string, string>> {
  const routes = await externalRoutes(state, services);
  const lines = [...routes].map(([ip, via]) => `route replace ${ip}/${familyOf(ip) === 6 ? 128 : 32} via ${via}`);
  await Promise.all(state.clients.map((c) => ipBatch(lines, { netns: c.netns })));
  return routes;
}
