/**
 * Compiles services and pods into one node's service maps (bpf/include/tp_service.h):
 * frontends, a Maglev table per frontend and backend set, and the backends.
 *
 * Per service port, the backend sets (kube-proxy's semantics, pkg/proxy/nftables):
 *   cluster   the usable backends cluster-wide (ready; terminating ones when none is ready)
 *   internal  internalTrafficPolicy Local: the usable backends on this node; else = cluster
 *   external  externalTrafficPolicy Local: the usable backends on this node; else = cluster
 * Frontends, by where the traffic comes from:
 *   from a pod      ClusterIP → internal; externalIPs, load balancer IPs and NodePort (on
 *                   any node's address) → cluster: a pod's traffic to an external address
 *                   is short-circuited, subject to neither traffic policy, as kube-proxy does
 *   from outside    externalIPs, load balancer IPs and NodePort (on this node's addresses)
 *                   → external
 * A frontend whose set is empty refuses new connections when the service has no usable
 * backend at all (REJECT), and drops them when it has some but not here (DROP).
 * ClientIP affinity is scoped by set (tp_affinity_scope): frontends on the cluster set
 * share a client's backend; those on a Local set keep their own, so an affinity made
 * through a NodePort never sends a ClusterIP connection past internalTrafficPolicy Local.
 *
 * Table ids: lut_id = service port id << 3 | set << 1 | generation, with the top bit
 * set for an IPv6 table (a dual-stack service port has its sets once per family: a
 * table holds backends of one family, the frontend's). A table keeps its id while its
 * size stays; a new size is written under the other generation and the frontends are
 * repointed, so a frontend's size and table always agree.
 */
import { addrBytes } from '../datapath/addr.js';
import { PROTO, TP_AFFINITY_SCOPE, TP_BACKEND_STATE, TP_FAMILY, TP_SVC_EMPTY, TP_SVC_ORIGIN } from '../datapath/constants.js';
import type { Entry, ServiceGroup, ServiceMaps } from '../datapath/desired.js';
import { tpBackend, tpSvcKey, tpSvcValue, u32Key, type TpBackend, type TpSvcKey, type TpSvcValue } from '../datapath/structs.js';
import type { PodRecord } from '../store/schema.js';
import { backendKey, type BackendIds } from './backend-ids.js';
import { maglevName, serviceBackends, serviceFamilies, usableBackends, type Backend } from './backends.js';
import { familyOfAddress } from './schema.js';
import { maglevTable, maglevTableSize } from './maglev.js';
import type { IPFamily, Service, ServicePort } from './types.js';

export interface ServiceCompileInput {
  node: string;
  services: readonly Service[];
  /** Every registered pod of the cluster. */
  pods: readonly PodRecord[];
  /** The cluster-wide Maglev seed. */
  seed: number;
  /** The largest table (a Maglev ladder prime); the same on every node. */
  maxTableSize: number;
  /** Backend ids as they stand; kept for backends that remain, freed for the others. */
  backendIds: BackendIds;
  /** Size of the table under a lut_id now, if there is one. */
  currentTableSize: (lutId: number) => number | undefined;
}

const LUT_SET = { cluster: 0, internal: 1, external: 2 } as const;
type LutSet = keyof typeof LUT_SET;
/** The lut_id bit of an IPv6 table (service port ids use 24 bits, shifted by 3). */
const LUT_IPV6 = 0x80000000;
const DATAPATH_FAMILY: Record<IPFamily, number> = { IPv4: TP_FAMILY.TP_FAMILY_IPV4, IPv6: TP_FAMILY.TP_FAMILY_IPV6 };
const FAMILIES: IPFamily[] = ['IPv4', 'IPv6'];

const PROTOCOL_NUMBER: Record<ServicePort['protocol'], number> = { TCP: PROTO.TCP, UDP: PROTO.UDP, SCTP: PROTO.SCTP };

const STATE: Record<Backend['state'], number> = {
  ready: TP_BACKEND_STATE.TP_BACKEND_ACTIVE,
  terminating: TP_BACKEND_STATE.TP_BACKEND_TERMINATING,
  unready: TP_BACKEND_STATE.TP_BACKEND_UNREADY,
};

/** The generation a table of `size` slots goes under: the one already that size, else the other. */
function lutId(base: number, size: number, current: ServiceCompileInput['currentTableSize']): number {
  const other = (base | 1) >>> 0; // u32: an IPv6 table's id has the top bit set, which `|` makes negative
  const g0 = current(base);
  if (g0 === size) return base;
  if (current(other) === size) return other;
  return g0 === undefined ? base : other;
}

/** What one service compiles to: its map entries (encoded once) and the backend keys it holds. */
interface CompiledService extends ServiceGroup {
  backendKeys: string[];
}

/** Entries with their bytes attached, so the map writer compares without encoding again. */
function encoded<K, V>(e: Entry<K, V>, key: { encode(k: K): Buffer }, value: { encode(v: V): Buffer }): Entry<K, V> {
  const k = key.encode(e.key);
  return { ...e, raw: { key: k, value: value.encode(e.value), hex: k.toString('hex') } };
}

/** One service, all its ports: frontends, their tables, its backends. */
function compileService(svc: Service, pods: readonly PodRecord[], input: Omit<ServiceCompileInput, 'services' | 'pods'>): CompiledService {
  const out: CompiledService = { frontends: [], backends: [], luts: [], backendKeys: [] };
  if (svc.clusterIPs[0] === 'None') return out; // headless: no translation
  const perPort = serviceBackends(svc, pods);
  const luts = new Map<number, Uint32Array>();
  svc.ports.forEach((port, i) => {
    if (port.id === undefined) return; // not allocated yet: apply has not finished
    const serviceId = port.id;
    const protocol = PROTOCOL_NUMBER[port.protocol];
    // SCTP cannot have its port rewritten (no CRC32c helper): such backends are left out.
    const all = perPort[i]!.filter((b) => port.protocol !== 'SCTP' || b.port === port.port);
    const ids = new Map<Backend, number>();
    for (const b of all) {
      const key = backendKey(serviceId, b.ip, b.port, protocol);
      const id = input.backendIds.claim(key);
      ids.set(b, id);
      out.backendKeys.push(key);
      out.backends.push(
        encoded(
          { key: id, value: { service_id: serviceId, family: DATAPATH_FAMILY[familyOfAddress(b.ip)], protocol, port: b.port, state: STATE[b.state], addr: addrBytes(b.ip).addr } },
          u32Key,
          tpBackend,
        ),
      );
    }
    // The sets of each family, from that family's backends.
    const setsOf = (family: IPFamily) => {
      const mine = all.filter((b) => familyOfAddress(b.ip) === family);
      const cluster = usableBackends(mine);
      const local = usableBackends(mine.filter((b) => b.node === input.node));
      const sets: Record<LutSet, Backend[]> = {
        cluster,
        internal: svc.internalTrafficPolicy === 'Local' ? local : cluster,
        external: svc.externalTrafficPolicy === 'Local' ? local : cluster,
      };
      return sets;
    };
    const byFamily = { IPv4: setsOf('IPv4'), IPv6: setsOf('IPv6') };
    const valueFor = (set: LutSet, family: IPFamily): TpSvcValue => {
      const sets = byFamily[family];
      const { cluster } = sets;
      const members = sets[set];
      // Equal sets share the cluster set's table.
      const which = set !== 'cluster' && members === cluster ? 'cluster' : set;
      const common = {
        service_id: serviceId,
        affinity_timeout_s: svc.sessionAffinity === 'ClientIP' ? svc.sessionAffinityTimeoutSeconds : 0,
        empty: cluster.length === 0 ? TP_SVC_EMPTY.TP_SVC_EMPTY_REJECT : TP_SVC_EMPTY.TP_SVC_EMPTY_DROP,
        // A client's affinity holds among the frontends that draw on the same endpoints.
        affinity_scope: which === 'cluster' ? TP_AFFINITY_SCOPE.TP_AFFINITY_CLUSTER : TP_AFFINITY_SCOPE.TP_AFFINITY_LOCAL,
      };
      if (members.length === 0) return { ...common, lut_id: 0, lut_size: 0 };
      const size = maglevTableSize(members.length, input.maxTableSize);
      const base = (((serviceId << 3) | (LUT_SET[which] << 1)) | (family === 'IPv6' ? LUT_IPV6 : 0)) >>> 0;
      const id = lutId(base, size, input.currentTableSize);
      if (!luts.has(id)) {
        const order = maglevTable(members.map(maglevName), size, input.seed);
        const memberIds = members.map((b) => ids.get(b)!);
        const table = new Uint32Array(size);
        for (let slot = 0; slot < size; slot++) table[slot] = memberIds[order[slot]!]!;
        luts.set(id, table);
      }
      return { ...common, lut_id: id, lut_size: size };
    };
    const frontend = (origin: number, addr: string | null, p: number, set: LutSet, family: IPFamily = familyOfAddress(addr!)) => {
      const key: TpSvcKey = {
        family: DATAPATH_FAMILY[family],
        protocol,
        port: p,
        origin,
        nodeport: addr === null ? 1 : 0,
        addr: addr === null ? Buffer.alloc(16) : addrBytes(addr).addr,
      };
      out.frontends.push(encoded({ key, value: valueFor(set, family) }, tpSvcKey, tpSvcValue));
    };
    for (const ip of svc.clusterIPs) frontend(TP_SVC_ORIGIN.TP_SVC_FROM_POD, ip, port.port, 'internal');
    // An external or load balancer IP of a family the service does not have is ignored, as kube-proxy does.
    const families = serviceFamilies(svc);
    for (const ip of [...svc.externalIPs, ...svc.loadBalancerIngress].filter((a) => families.includes(familyOfAddress(a)))) {
      frontend(TP_SVC_ORIGIN.TP_SVC_FROM_POD, ip, port.port, 'cluster');
      frontend(TP_SVC_ORIGIN.TP_SVC_FROM_OUTSIDE, ip, port.port, 'external');
    }
    // A node port always differs from the backends' port, and SCTP ports cannot be
    // rewritten (the parser refuses SCTP node ports; a stored one is not programmed).
    // A node port is served on the node's addresses of each of the service's families.
    if (port.nodePort !== undefined && port.protocol !== 'SCTP') {
      for (const family of FAMILIES.filter((f) => families.includes(f))) {
        frontend(TP_SVC_ORIGIN.TP_SVC_FROM_POD, null, port.nodePort, 'cluster', family);
        frontend(TP_SVC_ORIGIN.TP_SVC_FROM_OUTSIDE, null, port.nodePort, 'external', family);
      }
    }
  });
  out.luts = [...luts];
  return out;
}

/**
 * The compiler the agent keeps: it remembers each service's result with what it was
 * computed from — the service record and the pod records it selected (by identity: the
 * agent replaces a record's object whenever the record changes), the node, the seed and
 * the table limit — so a change recompiles only the services it touches: adding one
 * service when 10,000 exist compiles one, and the writer compares entries by the bytes
 * compiled with them.
 */
export class ServiceCompiler {
  private cache = new Map<string, { svc: Service; pods: PodRecord[]; context: string; out: CompiledService }>();
  private compiled = false;

  compile(input: ServiceCompileInput): ServiceMaps {
    const frontends: Entry<TpSvcKey, TpSvcValue>[] = [];
    const backends: Entry<number, TpBackend>[] = [];
    const luts = new Map<number, Uint32Array>();
    const byNamespace = new Map<string, PodRecord[]>();
    for (const p of input.pods) {
      const list = byNamespace.get(p.namespace);
      if (list) list.push(p);
      else byNamespace.set(p.namespace, [p]);
    }
    const context = `${input.node}|${input.seed}|${input.maxTableSize}`;
    const next = new Map<string, { svc: Service; pods: PodRecord[]; context: string; out: CompiledService }>();
    const dropped = new Set<string>(); // backend keys of recompiled or removed services
    for (const svc of input.services) {
      const pods = selectedPods(svc, byNamespace.get(svc.namespace) ?? []);
      const key = `${svc.namespace}/${svc.name}`;
      let hit = this.cache.get(key);
      if (!hit || hit.svc !== svc || hit.context !== context || !sameRefs(hit.pods, pods)) {
        for (const k of hit?.out.backendKeys ?? []) dropped.add(k);
        hit = { svc, pods, context, out: compileService(svc, pods, input) };
        for (const k of hit.out.backendKeys) dropped.delete(k);
      }
      next.set(key, hit);
      for (const e of hit.out.frontends) frontends.push(e);
      for (const e of hit.out.backends) backends.push(e);
      for (const [id, t] of hit.out.luts) luts.set(id, t);
    }
    for (const [key, old] of this.cache) if (!next.has(key)) for (const k of old.out.backendKeys) dropped.add(k);
    if (!this.compiled) {
      // The first compile also frees ids adopted for backends that exist no more.
      const held = new Set<string>();
      for (const h of next.values()) for (const k of h.out.backendKeys) held.add(k);
      for (const k of input.backendIds.keys()) if (!held.has(k)) dropped.add(k);
      this.compiled = true;
    }
    for (const k of dropped) input.backendIds.release(k);
    this.cache = next;
    return { frontends, backends, luts, groups: new Map([...next].map(([k, h]) => [k, h.out])) };
  }
}

/** The pods of a namespace a service's selector picks, in the namespace's order. */
function selectedPods(svc: Service, pods: readonly PodRecord[]): PodRecord[] {
  const sel = Object.entries(svc.selector);
  return pods.filter((p) => sel.every(([k, v]) => p.labels[k] === v));
}

const sameRefs = <T>(a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** One compile with no memory of earlier ones (tests, tools): ids of backends not compiled are freed. */
export function compileServices(input: ServiceCompileInput): ServiceMaps {
  return new ServiceCompiler().compile(input);
}
