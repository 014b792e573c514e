/**
 * An independent model of service backend selection, for checking the real datapath (maps
 * filled by the agent's compilers) against. It shares no code with src/services or
 * src/datapath: everything here is rewritten from what those modules and the C headers
 * document, so a mistake in the agent is not copied into the check.
 *
 * Sources, rule by rule:
 *   - which pods back a service port, their states, and the sets each frontend uses:
 *     Kubernetes Service semantics as DESIGN.md and the header comments of
 *     src/services/compile.ts and src/services/backends.ts state them (kube-proxy's):
 *       a pod backs a port when it is in the service's namespace, carries every label of
 *       the selector, has an IPv4 address, and resolves the targetPort (a number, or the
 *       name of one of its ports with the port's protocol); an SCTP backend on another
 *       port than the service port is never programmed (bpf/lib/nat.h);
 *       state: publishNotReadyAddresses makes every selected pod ready; otherwise a
 *       terminating pod is terminating, a ready one ready, the rest unready;
 *       usable(B) = the ready ones of B, or the terminating ones when none is ready;
 *       cluster = usable(all); local = usable(those on this node);
 *       internalTrafficPolicy Local: the ClusterIP uses local, else cluster;
 *       from a pod, externalIPs, load balancer IPs and a NodePort on any node's address
 *       use cluster (short-circuited, subject to neither traffic policy);
 *       an empty set rejects when cluster is empty, else drops;
 *       a headless service, or a port without an id, has no frontend; nor has an SCTP
 *       port's node port (it differs from every backend's port, and an SCTP port
 *       cannot be rewritten: nat.h, DESIGN.md).
 *   - the flow hash: bpf/lib/lb.h (tp_flow_hash), Bob Jenkins' lookup3 final mix of three
 *     words as the kernel's jhash_3words computes it.
 *   - the Maglev tables: Eisenbud et al., NSDI 2016, section 3.4 (permutations, then the
 *     round-robin fill), with the hash, name order and sizes of src/services/maglev.ts's
 *     header: digest = SHA-256(seed as 4 bytes big-endian ‖ name as UTF-8), offset =
 *     digest[0..8) mod M, skip = digest[8..16) mod (M − 1) + 1 (both big-endian u64),
 *     backends filled in the order of their UTF-8 name bytes; M = the smallest ladder
 *     size ≥ 100 · N and ≥ 1021 (the ladder: the largest prime below 2^8, 2^10, …, 2^24),
 *     capped at the agent's maximum. A backend's name is `ns/pod ip:port/PROTOCOL`
 *     (src/services/backends.ts, maglevName).
 *
 * Session affinity is outside the model (it depends on history and time): the model
 * answers for services without it, or for a client's first connection.
 */
import { createHash } from 'node:crypto';

export type SmProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface SmPodPort {
  name?: string;
  port: number;
  protocol: SmProtocol;
}

/** The fields of a registered pod the model reads (a PodRecord has them all). */
export interface SmPod {
  namespace: string;
  name: string;
  node: string;
  labels: Record<string, string>;
  ips: string[];
  ports: SmPodPort[];
  ready: boolean;
  terminating?: boolean;
}

export interface SmServicePort {
  protocol: SmProtocol;
  port: number;
  targetPort: number | string;
  nodePort?: number;
  id?: number;
}

/** The fields of a stored Service the model reads. */
export interface SmService {
  namespace: string;
  name: string;
  selector: Record<string, string>;
  clusterIPs: string[];
  /** Empty in a record from before dual-stack: then the families of clusterIPs. */
  ipFamilies: ('IPv4' | 'IPv6')[];
  ports: SmServicePort[];
  externalIPs: string[];
  loadBalancerIngress: string[];
  internalTrafficPolicy: 'Cluster' | 'Local';
  publishNotReadyAddresses: boolean;
}

export interface SmNode {
  name: string;
  addresses: string[];
}

export interface SmCluster {
  /** The node whose datapath is modelled (the client pod's). */
  node: string;
  nodes: SmNode[];
  services: SmService[];
  pods: SmPod[];
  seed: number;
  /** The agent's largest table size (a ladder size). */
  maxTableSize: number;
}

/** A new connection from a pod. Ports are host-order numbers. */
export interface SmFlow {
  src: string;
  dst: string;
  protocol: SmProtocol;
  sport: number;
  dport: number;
}

export interface SmBackend {
  /** `namespace/name` */
  pod: string;
  node: string;
  ip: string;
  port: number;
  state: 'ready' | 'terminating' | 'unready';
}

export type SmVerdict =
  | { kind: 'none' } // not addressed to a frontend: no translation
  | { kind: 'reject'; service: string } // no usable backend anywhere: RST / ICMP port unreachable
  | { kind: 'drop'; service: string } // usable backends exist, none in this frontend's set
  | { kind: 'backend'; service: string; backend: SmBackend; hairpin: boolean };

// ---- the flow hash (bpf/lib/lb.h) ----

const PROTOCOL_NUMBER: Record<SmProtocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };

const rol32 = (w: number, s: number) => ((w << s) | (w >>> (32 - s))) >>> 0;

/** An IPv6 address's 16 bytes (written out here: `::` expands to the missing zero groups). */
function ipv6Bytes(ip: string): number[] {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const groups = (x: string | undefined) => (x ? x.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8 || all.some((g) => !(g >= 0 && g <= 0xffff))) throw new TypeError(`service model: not an IPv6 address: ${ip}`);
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** An address's 16-byte key form (IPv4: the address, then zeros), folded: XOR of its four little-endian words. */
function foldAddress(ip: string): number {
  let b: number[];
  if (ip.includes(':')) b = ipv6Bytes(ip);
  else {
    b = ip.split('.').map(Number);
    if (b.length !== 4 || b.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new TypeError(`service model: not an IPv4 address: ${ip}`);
    b = [...b, ...Array(12).fill(0)];
  }
  let w = 0;
  for (let i = 0; i < 16; i += 4) w ^= b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
  return w >>> 0;
}

/** tp_flow_hash: jhash_3words(fold(src), fold(dst), sport << 16 | dport, seed ^ protocol). */
export function flowHash(f: SmFlow, seed: number): number {
  const init = (((seed ^ PROTOCOL_NUMBER[f.protocol]) >>> 0) + 0xdeadbeef + 12) >>> 0;
  let a = (foldAddress(f.src) + init) >>> 0;
  let b = (foldAddress(f.dst) + init) >>> 0;
  let c = ((((f.sport << 16) | f.dport) >>> 0) + init) >>> 0;
  // lookup3's final(a, b, c)
  c = ((c ^ b) - rol32(b, 14)) >>> 0;
  a = ((a ^ c) - rol32(c, 11)) >>> 0;
  b = ((b ^ a) - rol32(a, 25)) >>> 0;
  c = ((c ^ b) - rol32(b, 16)) >>> 0;
  a = ((a ^ c) - rol32(c, 4)) >>> 0;
  b = ((b ^ a) - rol32(a, 14)) >>> 0;
  c = ((c ^ b) - rol32(b, 24)) >>> 0;
  return c;
}

// ---- Maglev ----

function prime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** The table-size ladder: the largest prime below each of 2^8, 2^10, …, 2^24. */
export const LADDER: readonly number[] = Array.from({ length: 9 }, (_, i) => {
  let p = 2 ** (8 + 2 * i) - 1;
  while (!prime(p)) p--;
  return p;
});

/** Slots for n backends: the smallest ladder size ≥ 100·n and ≥ 1021, never above maxSize. */
export function tableSize(n: number, maxSize: number): number {
  for (const size of LADDER) if (size >= Math.max(100 * n, 1021) || size === maxSize) return size;
  throw new Error(`service model: ${maxSize} is not a ladder size`);
}

/** The paper's Populate(): slot → index into `names` (as given). */
export function maglevFill(names: readonly string[], size: number, seed: number): number[] {
  const seedBytes = Buffer.alloc(4);
  seedBytes.writeUInt32BE(seed >>> 0);
  const order = names.map((name, index) => ({ bytes: Buffer.from(name, 'utf8'), index })).sort((x, y) => Buffer.compare(x.bytes, y.bytes));
  const m = BigInt(size);
  const perm = order.map(({ bytes }) => {
    const d = createHash('sha256').update(Buffer.concat([seedBytes, bytes])).digest();
    const offset = Number(d.readBigUInt64BE(0) % m);
    const skip = Number(d.readBigUInt64BE(8) % (m - 1n)) + 1;
    return (j: number) => (offset + ((j * skip) % size)) % size;
  });
  const next = order.map(() => 0);
  const entry = new Array<number>(size).fill(-1);
  if (order.length === 0) return entry;
  let n = 0;
  for (;;) {
    for (let i = 0; i < order.length; i++) {
      let c = perm[i]!(next[i]!);
      while (entry[c]! >= 0) {
        next[i]!++;
        c = perm[i]!(next[i]!);
      }
      entry[c] = order[i]!.index;
      next[i]!++;
      if (++n === size) return entry;
    }
  }
}

// ---- backends ----

type SmFamily = 'IPv4' | 'IPv6';
const familyOf = (ip: string): SmFamily => (ip.includes(':') ? 'IPv6' : 'IPv4');
/** A service's families: as stored, or those of its cluster IPs. */
const familiesOf = (svc: SmService): SmFamily[] => (svc.ipFamilies.length > 0 ? svc.ipFamilies : svc.clusterIPs.filter((ip) => ip !== 'None').map(familyOf));

function stateOf(pod: SmPod, svc: SmService): SmBackend['state'] {
  if (svc.publishNotReadyAddresses) return 'ready';
  if (pod.terminating) return 'terminating';
  return pod.ready ? 'ready' : 'unready';
}

/** Every pod backing service port `port` of svc in one family (by its address of that family), with its state. */
export function backendsOf(svc: SmService, port: SmServicePort, pods: readonly SmPod[], family: SmFamily = 'IPv4'): SmBackend[] {
  const out: SmBackend[] = [];
  for (const pod of pods) {
    if (pod.namespace !== svc.namespace) continue;
    if (!Object.entries(svc.selector).every(([k, v]) => Object.hasOwn(pod.labels, k) && pod.labels[k] === v)) continue;
    if (!familiesOf(svc).includes(family)) continue;
    const ip = pod.ips.find((a) => familyOf(a) === family);
    if (!ip) continue;
    const target =
      typeof port.targetPort === 'number' ? port.targetPort : pod.ports.find((p) => p.name === port.targetPort && p.protocol === port.protocol)?.port;
    if (target === undefined) continue;
    if (port.protocol === 'SCTP' && target !== port.port) continue;
    out.push({ pod: `${pod.namespace}/${pod.name}`, node: pod.node, ip, port: target, state: stateOf(pod, svc) });
  }
  return out;
}

/** The backends that take new connections: the ready ones, else the terminating ones. */
export function usable(bs: readonly SmBackend[]): SmBackend[] {
  const ready = bs.filter((b) => b.state === 'ready');
  return ready.length > 0 ? ready : bs.filter((b) => b.state === 'terminating');
}

export const maglevNameOf = (b: SmBackend, protocol: SmProtocol) => `${b.pod} ${b.ip}:${b.port}/${protocol}`;

// ---- the model ----

interface Frontend {
  service: string;
  protocol: SmProtocol;
  /** The backends of its set. */
  set: SmBackend[];
  /** The service port has no usable backend anywhere. */
  noneAnywhere: boolean;
}

export class ServiceModel {
  /** addr|protocol|port → frontend */
  private readonly exact = new Map<string, Frontend>();
  /** family|protocol|nodePort → frontend (on any node address of that family) */
  private readonly nodePorts = new Map<string, Frontend>();
  private readonly nodeAddrs: Set<string>;
  private readonly tables = new Map<Frontend, SmBackend[]>();

  constructor(readonly cluster: SmCluster) {
    this.nodeAddrs = new Set(cluster.nodes.flatMap((n) => n.addresses));
    for (const svc of cluster.services) {
      if (svc.clusterIPs[0] === 'None') continue;
      for (const port of svc.ports) {
        if (port.id === undefined) continue;
        // Each family has its own backends: those pods' addresses of the frontend's family.
        for (const family of ['IPv4', 'IPv6'] as const) {
          const all = backendsOf(svc, port, cluster.pods, family);
          const cluster_ = usable(all);
          const local = usable(all.filter((b) => b.node === cluster.node));
          const fe = (set: SmBackend[]): Frontend => ({ service: `${svc.namespace}/${svc.name}`, protocol: port.protocol, set, noneAnywhere: cluster_.length === 0 });
          const internal = fe(svc.internalTrafficPolicy === 'Local' ? local : cluster_);
          const toCluster = fe(cluster_);
          const mine = (ip: string) => familyOf(ip) === family;
          for (const ip of svc.clusterIPs.filter(mine)) this.exact.set(`${ip}|${port.protocol}|${port.port}`, internal);
          // An external IP of a family the service lacks is no frontend (kube-proxy ignores it).
          if (familiesOf(svc).includes(family)) {
            for (const ip of [...svc.externalIPs, ...svc.loadBalancerIngress].filter(mine)) this.exact.set(`${ip}|${port.protocol}|${port.port}`, toCluster);
          }
          if (port.nodePort !== undefined && port.protocol !== 'SCTP' && familiesOf(svc).includes(family)) {
            this.nodePorts.set(`${family}|${port.protocol}|${port.nodePort}`, toCluster);
          }
        }
      }
    }
  }

  /** The frontend a flow from a pod is addressed to, if any. */
  private frontendOf(f: SmFlow): Frontend | undefined {
    const exact = this.exact.get(`${f.dst}|${f.protocol}|${f.dport}`);
    if (exact) return exact;
    return this.nodeAddrs.has(f.dst) ? this.nodePorts.get(`${familyOf(f.dst)}|${f.protocol}|${f.dport}`) : undefined;
  }

  /** The Maglev table of a frontend: slot → backend. */
  private tableOf(fe: Frontend): SmBackend[] {
    let t = this.tables.get(fe);
    if (!t) {
      const size = tableSize(fe.set.length, this.cluster.maxTableSize);
      const idx = maglevFill(fe.set.map((b) => maglevNameOf(b, fe.protocol)), size, this.cluster.seed);
      t = idx.map((i) => fe.set[i]!);
      this.tables.set(fe, t);
    }
    return t;
  }

  /** What a new connection `f` from a pod of this node becomes. */
  decide(f: SmFlow): SmVerdict {
    const fe = this.frontendOf(f);
    if (!fe) return { kind: 'none' };
    if (fe.set.length === 0) return { kind: fe.noneAnywhere ? 'reject' : 'drop', service: fe.service };
    const table = this.tableOf(fe);
    const backend = table[flowHash(f, this.cluster.seed) % table.length]!;
    return { kind: 'backend', service: fe.service, backend, hairpin: backend.ip === f.src };
  }

  /** The backend `f` goes to; throws when it is not translated. */
  backendOf(f: SmFlow): SmBackend {
    const v = this.decide(f);
    if (v.kind !== 'backend') throw new Error(`service model: ${JSON.stringify(f)} is ${v.kind}, not translated`);
    return v.backend;
  }
}
