/**
 * Cluster-wide, race-free allocation of what a service holds: its ClusterIP (from the
 * cluster's service range), its node ports and health-check node port (from the
 * node-port range) and an id per service port. Each value is claimed with KV create()
 * on its own key of tcplane-allocations (as identities are), so two services — applied
 * by two users at once, from two machines — never hold the same value:
 *
 *   clusterip/<ip>    nodeport/<port>    portid/<n>      → {v, owner: "ns/name", createdAt}
 *
 * Given values are checked (inside the range, not taken by another service); missing
 * ones are kept from the stored service when it already had them (re-apply changes
 * nothing) or allocated. A ClusterIP cannot change once set, as in Kubernetes. Every
 * problem is reported with the field it concerns; when there is any, the claims this
 * run made are withdrawn, so a failed apply holds nothing.
 *
 * A claim whose owner no longer has it (no such service, or the service does not use
 * it) for a minute is stale — an apply that died between claiming and writing — and is
 * taken over.
 */
import { randomInt } from 'node:crypto';
import { formatAddress, parseAddress, prefixOf } from '../policy/prefix.js';
import { allocationClaim, serviceRanges, type AllocationClaim, type ClusterConfig } from '../store/schema.js';
import { familyOfAddress } from './schema.js';
import type { Store } from '../store/store.js';
import type { IPFamily, Service, ServicePort } from './types.js';
import { SERVICE_PORT_ID_MAX } from './types.js';

export type FieldPath = (string | number)[];

/** A problem with one field of a service document; `paths` are where the user may have written it, best first. */
export interface AllocationProblem {
  paths: FieldPath[];
  detail: string;
}

const STALE_MS = 60_000;
const MAX_ATTEMPTS = 2000;

export const claimKey = {
  // KV keys take no ':', so an IPv6 address's colons become '-' (which no address has).
  clusterIP: (ip: string) => `clusterip/${ip.replaceAll(':', '-')}`,
  nodePort: (port: number) => `nodeport/${port}`,
  portId: (id: number) => `portid/${id}`,
};

const serviceName = (s: Pick<Service, 'namespace' | 'name'>) => `${s.namespace}/${s.name}`;

/** Every claim key a (stored) service holds. */
export function claimsOf(svc: Service): string[] {
  const keys: string[] = [];
  for (const ip of svc.clusterIPs) if (ip !== 'None') keys.push(claimKey.clusterIP(ip));
  for (const p of svc.ports) {
    if (p.nodePort !== undefined) keys.push(claimKey.nodePort(p.nodePort));
    if (p.id !== undefined) keys.push(claimKey.portId(p.id));
  }
  if (svc.healthCheckNodePort !== undefined) keys.push(claimKey.nodePort(svc.healthCheckNodePort));
  return [...new Set(keys)];
}

/** The usable addresses of a service range: the first and how many (its network address, and an IPv4 range's broadcast address, are not handed out). */
export function serviceRange(cidr: string): { family: IPFamily; first: bigint; count: number } {
  const p = prefixOf(cidr);
  const width = p.family === 4 ? 32 : 128;
  const size = Number(1n << BigInt(width - p.len));
  const family: IPFamily = p.family === 4 ? 'IPv4' : 'IPv6';
  if (size <= 2) return { family, first: p.bits, count: size };
  return { family, first: p.bits + 1n, count: p.family === 4 ? size - 2 : size - 1 };
}

const addressAt = (range: ReturnType<typeof serviceRange>, i: number) => formatAddress(range.family === 'IPv4' ? 4 : 6, range.first + BigInt(i));

/** Where `ip` lies in `range` (0 for its first usable address), or -1 outside it. */
function offsetIn(range: ReturnType<typeof serviceRange>, ip: string): number {
  const a = parseAddress(ip);
  if (!a || (a.family === 4) !== (range.family === 'IPv4')) return -1;
  const off = a.value - range.first;
  return off >= 0n && off < BigInt(range.count) ? Number(off) : -1;
}

/** Whether a service needs node ports, per port. */
function needsNodePorts(svc: Service): boolean {
  return svc.type === 'NodePort' || (svc.type === 'LoadBalancer' && svc.allocateLoadBalancerNodePorts);
}

/** The stored port a new port continues: the same port and protocol. */
function previousPort(p: ServicePort, existing: Service | undefined): ServicePort | undefined {
  return existing?.ports.find((e) => e.port === p.port && e.protocol === p.protocol);
}

export class Allocator {
  /** Claims as read when the allocator was made, and as it changed them since. */
  private readonly claims = new Map<string, AllocationClaim>();
  private readonly services = new Map<string, Service>();

  private constructor(
    private readonly store: Store,
    private readonly config: ClusterConfig,
  ) {}

  /**
   * An allocator over the store's current claims.
   * @param services every stored service (to tell stale claims from live ones)
   */
  static async load(store: Store, config: ClusterConfig, services: Iterable<Service>): Promise<Allocator> {
    const a = new Allocator(store, config);
    for (const [k, e] of (await store.list('allocations', allocationClaim)).entries) a.claims.set(k, e.value);
    for (const s of services) a.services.set(serviceName(s), s);
    return a;
  }

  /** Whether `key`'s claim is held for real (not stale) by another service than `owner`. */
  private heldByOther(key: string, claim: AllocationClaim, owner: string): boolean {
    if (claim.owner === owner) return false;
    const holder = this.services.get(claim.owner);
    const used = holder !== undefined && claimsOf(holder).includes(key);
    return used || Date.now() - Date.parse(claim.createdAt) < STALE_MS;
  }

  /**
   * Claims `key` for `owner`: true when it is owner's now (new, or already owner's).
   * `made` collects the keys this call created.
   */
  private async claim(key: string, owner: string, made: string[]): Promise<{ ok: true } | { ok: false; holder: string }> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const value: AllocationClaim = { v: 1, owner, createdAt: new Date().toISOString() };
      if ((await this.store.create('allocations', key, value)) !== null) {
        this.claims.set(key, value);
        made.push(key);
        return { ok: true };
      }
      const cur = (await this.store.get('allocations', key, allocationClaim))?.value;
      if (!cur) continue; // withdrawn meanwhile: try again
      this.claims.set(key, cur);
      if (cur.owner === owner) return { ok: true };
      if (this.heldByOther(key, cur, owner)) return { ok: false, holder: cur.owner };
      await this.store.delete('allocations', key); // stale: an apply that never finished
      this.claims.delete(key);
    }
    return { ok: false, holder: 'another writer' };
  }

  /**
   * Claims the first free value from a random start (or the lowest), going round the
   * range once; values in `inUse` (taken by this service's other fields) are skipped.
   */
  private async claimFree(
    first: number,
    last: number,
    keyOf: (n: number) => string,
    owner: string,
    made: string[],
    inUse: Set<string>,
    random = true,
  ): Promise<number | undefined> {
    const size = last - first + 1;
    const start = random ? randomInt(0, size) : 0;
    let attempts = 0;
    for (let i = 0; i < size && attempts < MAX_ATTEMPTS; i++) {
      const n = first + ((start + i) % size);
      const key = keyOf(n);
      const cur = this.claims.get(key);
      if (inUse.has(key) || (cur && this.heldByOther(key, cur, owner))) continue;
      attempts++;
      if ((await this.claim(key, owner, made)).ok) {
        inUse.add(key);
        return n;
      }
    }
    return undefined;
  }

  /**
   * Fills in every allocation `svc` needs, keeping what `existing` (the stored version)
   * had. On any problem the claims made here are withdrawn and `problems` says why.
   */
  async allocate(
    svc: Service,
    existing: Service | undefined,
  ): Promise<{ service: Service; problems: AllocationProblem[]; /** claims this call created */ made: string[] }> {
    const owner = serviceName(svc);
    const problems: AllocationProblem[] = [];
    const made: string[] = [];
    const inUse = new Set<string>(); // claim keys this version of the service uses
    const out: Service = { ...svc, clusterIPs: [...svc.clusterIPs], ports: svc.ports.map((p) => ({ ...p })) };
    const np = this.config.nodePortRange;

    // IP families, then a ClusterIP per family.
    // An update that names no policy keeps the stored one (a re-apply never drops a family), as Kubernetes does.
    out.ipFamilyPolicy = svc.ipFamilyPolicy ?? existing?.ipFamilyPolicy ?? 'SingleStack';
    const families = this.familiesOf(out, existing, problems);
    out.ipFamilies = families;
    const headless = (svc.clusterIPs[0] ?? existing?.clusterIPs[0]) === 'None';
    if (headless) {
      const had = existing?.clusterIPs[0];
      if (had !== undefined && had !== 'None') {
        problems.push({ paths: [['spec', 'clusterIP'], ['spec', 'clusterIPs', 0]], detail: `field is immutable: the service has ${had}; delete it first to change its cluster IP` });
      }
      out.clusterIPs = ['None'];
    } else {
      out.clusterIPs = [];
      for (const [i, family] of families.entries()) {
        const ip = await this.clusterIPFor(svc, existing, family, i, owner, made, inUse, problems);
        if (ip !== undefined) out.clusterIPs.push(ip);
      }
    }

    // Node ports, port ids.
    const inRange = (p: number) => p >= np.min && p <= np.max;
    for (const [i, p] of out.ports.entries()) {
      const prev = previousPort(p, existing);
      const path: FieldPath = ['spec', 'ports', i, 'nodePort'];
      if (!needsNodePorts(svc)) {
        delete p.nodePort;
      } else if (p.nodePort !== undefined) {
        if (!inRange(p.nodePort)) {
          problems.push({ paths: [path], detail: `${p.nodePort} is outside the cluster's node port range ${np.min}-${np.max}` });
        } else {
          const r = await this.claim(claimKey.nodePort(p.nodePort), owner, made);
          if (!r.ok) problems.push({ paths: [path], detail: `${p.nodePort} is already allocated to service ${r.holder}` });
          inUse.add(claimKey.nodePort(p.nodePort));
        }
      } else if (prev?.nodePort !== undefined && inRange(prev.nodePort) && !inUse.has(claimKey.nodePort(prev.nodePort))) {
        p.nodePort = prev.nodePort;
        await this.claim(claimKey.nodePort(p.nodePort), owner, made);
        inUse.add(claimKey.nodePort(p.nodePort));
      } else {
        const n = await this.claimFree(np.min, np.max, claimKey.nodePort, owner, made, inUse);
        if (n === undefined) problems.push({ paths: [['spec', 'ports', i]], detail: `no free node port left in ${np.min}-${np.max}` });
        else p.nodePort = n;
      }
      if (prev?.id !== undefined && !inUse.has(claimKey.portId(prev.id))) {
        p.id = prev.id;
        await this.claim(claimKey.portId(p.id), owner, made);
        inUse.add(claimKey.portId(p.id));
      } else {
        const id = await this.claimFree(1, SERVICE_PORT_ID_MAX, claimKey.portId, owner, made, inUse, false);
        if (id === undefined) problems.push({ paths: [['spec', 'ports', i]], detail: 'no free service port id' });
        else p.id = id;
      }
    }

    // Health-check node port.
    if (svc.type === 'LoadBalancer' && svc.externalTrafficPolicy === 'Local') {
      const path: FieldPath = ['spec', 'healthCheckNodePort'];
      const want = svc.healthCheckNodePort ?? existing?.healthCheckNodePort;
      if (want !== undefined) {
        if (!inRange(want)) problems.push({ paths: [path], detail: `${want} is outside the cluster's node port range ${np.min}-${np.max}` });
        else {
          const r = await this.claim(claimKey.nodePort(want), owner, made);
          if (!r.ok) problems.push({ paths: [path], detail: `${want} is already allocated to service ${r.holder}` });
          if (inUse.has(claimKey.nodePort(want))) problems.push({ paths: [path], detail: `${want} is also one of the service's node ports` });
          out.healthCheckNodePort = want;
        }
      } else {
        const n = await this.claimFree(np.min, np.max, claimKey.nodePort, owner, made, inUse);
        if (n === undefined) problems.push({ paths: [['spec']], detail: `no free node port left for the health check in ${np.min}-${np.max}` });
        else out.healthCheckNodePort = n;
      }
    } else {
      delete out.healthCheckNodePort;
    }

    if (problems.length > 0) {
      await this.release(made);
      return { service: svc, problems, made: [] };
    }
    this.services.set(owner, out);
    return { service: out, problems, made };
  }

  /**
   * The service's families, as Kubernetes decides them: as given (or read from its
   * cluster IPs), else the stored service's, else the cluster's primary family; a
   * PreferDualStack or RequireDualStack service gets the cluster's other family too when
   * it has one. A family the cluster has no service range for, RequireDualStack on a
   * single-stack cluster, and a changed primary family are problems.
   */
  private familiesOf(svc: Service, existing: Service | undefined, problems: AllocationProblem[]): IPFamily[] {
    const ranges = serviceRanges(this.config);
    const cluster = ranges.map((r) => serviceRange(r).family);
    const given = svc.ipFamilies;
    given.forEach((f, i) => {
      if (!cluster.includes(f)) {
        problems.push({
          paths: [['spec', 'ipFamilies', i], ['spec', 'clusterIPs', i], ['spec', 'clusterIP']],
          detail: `${f} is not configured on this cluster (its service range${ranges.length > 1 ? 's' : ''}: ${ranges.join(', ')})`,
        });
      }
    });
    if (svc.ipFamilyPolicy === 'RequireDualStack' && cluster.length < 2) {
      problems.push({ paths: [['spec', 'ipFamilyPolicy']], detail: `RequireDualStack needs a dual-stack cluster; this one has only the ${cluster[0]} service range ${ranges[0]}` });
    }
    const out = given.length > 0 ? [...given] : existing && existing.ipFamilies.length > 0 ? [existing.ipFamilies[0]!] : [cluster[0]!];
    if (svc.ipFamilyPolicy !== 'SingleStack' && out.length === 1) {
      const other = cluster.find((f) => f !== out[0]);
      if (other) out.push(other);
    }
    const primary = existing?.ipFamilies[0];
    if (primary !== undefined && existing!.clusterIPs[0] !== undefined && out[0] !== primary) {
      problems.push({ paths: [['spec', 'ipFamilies', 0]], detail: `the primary family is immutable: the service is ${primary}; delete it first to change it` });
    }
    return out.filter((f) => cluster.includes(f));
  }

  /**
   * The ClusterIP of `family` (the service's i-th): as given (in that family's range,
   * free), else the stored service's, else a free one. A cluster IP never changes once set.
   */
  private async clusterIPFor(
    svc: Service,
    existing: Service | undefined,
    family: IPFamily,
    i: number,
    owner: string,
    made: string[],
    inUse: Set<string>,
    problems: AllocationProblem[],
  ): Promise<string | undefined> {
    const paths: FieldPath[] = i === 0 ? [['spec', 'clusterIP'], ['spec', 'clusterIPs', 0]] : [['spec', 'clusterIPs', i]];
    const cidr = serviceRanges(this.config).find((r) => serviceRange(r).family === family)!;
    const range = serviceRange(cidr);
    const given = svc.clusterIPs.find((ip) => ip !== 'None' && familyOfAddress(ip) === family);
    const had = existing?.clusterIPs.find((ip) => ip !== 'None' && familyOfAddress(ip) === family);
    if (had !== undefined && given !== undefined && given !== had) {
      problems.push({ paths, detail: `field is immutable: the service has ${had}; delete it first to change its cluster IP` });
      return undefined;
    }
    const want = given ?? had;
    if (want !== undefined) {
      if (offsetIn(range, want) < 0) {
        problems.push({ paths, detail: `${want} is not in the cluster's ${family} service range ${cidr}` });
        return undefined;
      }
      const r = await this.claim(claimKey.clusterIP(want), owner, made);
      if (!r.ok) problems.push({ paths, detail: `${want} is already allocated to service ${r.holder}` });
      inUse.add(claimKey.clusterIP(want));
      return want;
    }
    const n = await this.claimFree(0, range.count - 1, (x) => claimKey.clusterIP(addressAt(range, x)), owner, made, inUse);
    if (n === undefined) {
      problems.push({ paths: [['spec']], detail: `no free ${family} cluster IP left in ${cidr}` });
      return undefined;
    }
    return addressAt(range, n);
  }

  /** Withdraws claims (a failed apply's, or those an updated or deleted service no longer uses). */
  async release(keys: readonly string[]): Promise<void> {
    await Promise.all(
      keys.map(async (k) => {
        await this.store.delete('allocations', k);
        this.claims.delete(k);
      }),
    );
  }
}
