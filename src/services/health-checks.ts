/**
 * What each node's health-check node ports must answer: for every LoadBalancer service
 * with externalTrafficPolicy Local, how many ready backends it has on this node (a load
 * balancer sends traffic only to nodes that have some, as with kube-proxy).
 */
import type { PodRecord } from '../store/schema.js';
import { serviceBackends } from './backends.js';
import type { Service } from './types.js';

export interface HealthCheck {
  port: number;
  namespace: string;
  name: string;
  /** Ready backend pods of the service on this node (each pod once, whatever its ports). */
  localEndpoints: number;
}

export function healthChecks(services: Iterable<Service>, pods: readonly PodRecord[], node: string): HealthCheck[] {
  const out: HealthCheck[] = [];
  for (const svc of services) {
    if (svc.healthCheckNodePort === undefined) continue;
    const local = new Set(serviceBackends(svc, pods).flat().filter((b) => b.node === node && b.state === 'ready').map((b) => b.pod));
    out.push({ port: svc.healthCheckNodePort, namespace: svc.namespace, name: svc.name, localEndpoints: local.size });
  }
  return out.sort((a, b) => a.port - b.port);
}
