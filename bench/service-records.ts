/**
 * The services the in-process benchmarks compile: N ClusterIP services in namespace
 * bench, each one TCP port 80 selecting app=backend, as the store would hold them
 * (allocations made: service i has cluster IP 10.96.x.y and port id i + 1).
 */
import type { Service } from '../src/services/types.js';

/** The cluster IP of bench service i (10.96.0.1 for i = 0). */
export const benchClusterIP = (i: number): string => `10.96.${(i + 1) >> 8}.${(i + 1) & 255}`;

/** Bench service i, forwarding port 80 to targetPort; `file` names the benchmark as its source. */
export function benchService(i: number, targetPort: number, file: string): Service {
  return {
    kind: 'Service',
    apiVersion: 'v1',
    namespace: 'bench',
    name: `svc-${i}`,
    type: 'ClusterIP',
    selector: { app: 'backend' },
    clusterIPs: [benchClusterIP(i)],
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    ports: [{ name: 'tcp', protocol: 'TCP', port: 80, targetPort, id: i + 1 }],
    externalIPs: [],
    loadBalancerIngress: [],
    sessionAffinity: 'None',
    sessionAffinityTimeoutSeconds: 0,
    externalTrafficPolicy: 'Cluster',
    internalTrafficPolicy: 'Cluster',
    allocateLoadBalancerNodePorts: true,
    publishNotReadyAddresses: false,
    source: { file, line: 0 },
  } as Service;
}
