/**
 * `lab probe --to-service`: every running pod and every client → every service
 * frontend it can use, with WHOAMI probes, so each row says which backend answered and
 * which address it saw the connection come from:
 *   from pods      each ClusterIP, on each service port
 *   from clients   each NodePort on every node's address of each of the service's
 *                  families, and each external and load balancer IP on each service port
 * (each address only from sources that have its family).
 * TCP and UDP ports only (the lab serves no SCTP). Rows come sorted by from, to,
 * address, port, protocol.
 */
import type { Service } from '../services/types.js';
import { serviceFamilies } from '../services/backends.js';
import { addressOf, familyOf, probeSources, probeTargets, type ProbeOptions, type ProbeTarget } from './probe.js';
import type { LabState } from './state.js';

/** One row of `lab probe --to-service --json` (DESIGN.md). `reason` only when not connected. */
export interface ServiceProbeRow {
  from: string;
  /** `svc:namespace/name` */
  to: string;
  address: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  family: 4 | 6;
  connected: boolean;
  /** The pod that answered (WHOAMI), null when not connected. */
  backend: string | null;
  /** The address and port the backend saw, null when not connected. */
  peer: string | null;
  reason?: string;
}

type Target = ProbeTarget & { whoami: true };

/** The frontends a source of `kind` with addresses `ips` probes. */
function frontendsFor(kind: 'pod' | 'client', ips: readonly string[], services: readonly Service[], state: LabState, opts: ProbeOptions): Target[] {
  const out: Target[] = [];
  for (const s of services) {
    if (s.clusterIPs[0] === 'None') continue;
    const to = `svc:${s.namespace}/${s.name}`;
    for (const p of s.ports) {
      if (p.protocol === 'SCTP') continue;
      const protocol = p.protocol;
      if (opts.protocols && !opts.protocols.includes(protocol)) continue;
      const add = (ip: string, port: number) => {
        if (opts.families && !opts.families.includes(familyOf(ip))) return;
        if (!addressOf(ips, familyOf(ip))) return; // the source has no address of that family
        if (!opts.ports || opts.ports.includes(port)) out.push({ to, ip, port, protocol, whoami: true });
      };
      if (kind === 'pod') {
        for (const ip of s.clusterIPs) add(ip, p.port);
        continue;
      }
      const families = serviceFamilies(s).map((f) => (f === 'IPv6' ? 6 : 4));
      if (p.nodePort !== undefined) {
        for (const n of state.nodes) for (const ip of n.underlayIPs) if (families.includes(familyOf(ip))) add(ip, p.nodePort);
      }
      for (const ip of [...s.externalIPs, ...s.loadBalancerIngress]) add(ip, p.port);
    }
  }
  return out;
}

export async function labProbeServices(state: LabState, services: readonly Service[], opts: ProbeOptions = {}): Promise<ServiceProbeRow[]> {
  const timeoutMs = opts.timeoutMs ?? 1000;
  const answers = await Promise.all(
    probeSources(state).map(async (src) => {
      const targets = frontendsFor(src.kind, src.ips, services, state, opts);
      return (await probeTargets(state, src.from, targets, timeoutMs)).map(
        (r): ServiceProbeRow => ({
          from: src.from,
          to: r.to,
          address: r.ip,
          port: r.port,
          protocol: r.protocol,
          family: familyOf(r.ip),
          connected: r.connected,
          backend: r.backend ?? null,
          peer: r.peer ?? null,
          ...(r.connected || r.reason === undefined ? {} : { reason: r.reason }),
        }),
      );
    }),
  );
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return answers
    .flat()
    .sort((a, b) => cmp(a.from, b.from) || cmp(a.to, b.to) || cmp(a.address, b.address) || a.port - b.port || cmp(a.protocol, b.protocol));
}
