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
 *
 * Table ids: lut_id = service port id << 3 | set << 1 | generation. A table keeps its
 * id while its size stays; a new size is written under the other generation and the
 * frontends are repointed, so a frontend's size and table always agree.
 */
import { addrBytes } from '../datapath/addr.js';
import { PROTO, TP_BACKEND_STATE, TP_FAMILY, TP_SVC_EMPTY, TP_SVC_ORIGIN } from '../datapath/constants.js';
import type { Entry, ServiceMaps } from '../datapath/desired.js';
import type { TpBackend, TpSvcKey, TpSvcValue } from '../datapath/structs.js';
import type { PodRecord } from '../store/schema.js';
import { backendKey, type BackendIds } from './backend-ids.js';
import { maglevName, serviceBackends, usableBackends, type Backend } from './backends.js';
import { maglevTable, maglevTableSize } from './maglev.js';
import type { Service, ServicePort } from './types.js';

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
  /**
   * Tables computed by earlier compiles (the agent keeps one): a table whose inputs did
   * not change is not computed again, so adding one service to 10,000 fills one table,
   * not 10,000. Without it every table is computed.
   */
  maglevCache?: MaglevCache;
}

/**
 * Maglev tables by lut id, each with the inputs it was computed from (backend names and
 * ids in order, size, seed); a compile takes a table from here when they are the same
 * (the very same Uint32Array, which the map writer then recognizes as unchanged without
 * comparing slots), and end() drops the tables the compile did not use.
 */
export class MaglevCache {
  private tables = new Map<number, { inputs: string; table: Uint32Array }>();
  private used = new Map<number, { inputs: string; table: Uint32Array }>();

  /** The table of backend ids for `names` at `size` slots, computed only when lut `id` had other inputs. */
  table(id: number, names: readonly string[], ids: readonly number[], size: number, seed: number): Uint32Array {
    const inputs = `${size}|${seed}|${ids.join(',')}|${names.join('\n')}`;
    const have = this.used.get(id) ?? this.tables.get(id);
    const entry = have && have.inputs === inputs ? have : { inputs, table: lutOf(maglevTable(names, size, seed), ids) };
    this.used.set(id, entry);
    return entry.table;
  }

  begin(): void {
    this.used = new Map();
  }

  end(): void {
    this.tables = this.used;
  }

  get size(): number {
    return this.tables.size;
  }
}

/** Slots of backend indexes → slots of backend ids. */
function lutOf(order: Uint32Array, ids: readonly number[]): Uint32Array {
  const table = new Uint32Array(order.length);
  for (let j = 0; j < order.length; j++) table[j] = ids[order[j]!]!;
  return table;
}

const LUT_SET = { cluster: 0, internal: 1, external: 2 } as const;
type LutSet = keyof typeof LUT_SET;

const PROTOCOL_NUMBER: Record<ServicePort['protocol'], number> = { TCP: PROTO.TCP, UDP: PROTO.UDP, SCTP: PROTO.SCTP };

const STATE: Record<Backend['state'], number> = {
  ready: TP_BACKEND_STATE.TP_BACKEND_ACTIVE,
  terminating: TP_BACKEND_STATE.TP_BACKEND_TERMINATING,
  unready: TP_BACKEND_STATE.TP_BACKEND_UNREADY,
};

/** The generation a table of `size` slots goes under: the one already that size, else the other. */
function lutId(base: number, size: number, current: ServiceCompileInput['currentTableSize']): number {
  const g0 = current(base);
  if (g0 === size) return base;
  if (current(base | 1) === size) return base | 1;
  return g0 === undefined ? base : base | 1;
}

export function compileServices(input: ServiceCompileInput): ServiceMaps {
  const frontends: Entry<TpSvcKey, TpSvcValue>[] = [];
  const backends: Entry<number, TpBackend>[] = [];
  const luts = new Map<number, Uint32Array>();
  input.backendIds.begin();
  input.maglevCache?.begin();

  for (const svc of input.services) {
    if (svc.clusterIPs[0] === 'None') continue; // headless: no translation
    const perPort = serviceBackends(svc, input.pods);
    svc.ports.forEach((port, i) => {
      if (port.id === undefined) return; // not allocated yet: apply has not finished
      const serviceId = port.id;
      const protocol = PROTOCOL_NUMBER[port.protocol];
      // SCTP cannot have its port rewritten (no CRC32c helper): such backends are left out.
      const all = perPort[i]!.filter((b) => port.protocol !== 'SCTP' || b.port === port.port);
      const ids = new Map<Backend, number>();
      for (const b of all) {
        const id = input.backendIds.claim(backendKey(serviceId, b.ip, b.port, protocol));
        ids.set(b, id);
        backends.push({
          key: id,
          value: { service_id: serviceId, family: TP_FAMILY.TP_FAMILY_IPV4, protocol, port: b.port, state: STATE[b.state], addr: addrBytes(b.ip).addr },
        });
      }
      const cluster = usableBackends(all);
      const local = usableBackends(all.filter((b) => b.node === input.node));
      const sets: Record<LutSet, Backend[]> = {
        cluster,
        internal: svc.internalTrafficPolicy === 'Local' ? local : cluster,
        external: svc.externalTrafficPolicy === 'Local' ? local : cluster,
      };
      const valueFor = (set: LutSet): TpSvcValue => {
        const members = sets[set];
        // Equal sets share the cluster set's table.
        const which = set !== 'cluster' && members === cluster ? 'cluster' : set;
        const common = {
          service_id: serviceId,
          affinity_timeout_s: svc.sessionAffinity === 'ClientIP' ? svc.sessionAffinityTimeoutSeconds : 0,
          empty: cluster.length === 0 ? TP_SVC_EMPTY.TP_SVC_EMPTY_REJECT : TP_SVC_EMPTY.TP_SVC_EMPTY_DROP,
        };
        if (members.length === 0) return { ...common, lut_id: 0, lut_size: 0 };
        const size = maglevTableSize(members.length, input.maxTableSize);
        const id = lutId(((serviceId << 3) | (LUT_SET[which] << 1)) >>> 0, size, input.currentTableSize);
        if (!luts.has(id)) {
          const names = members.map(maglevName);
          const memberIds = members.map((b) => ids.get(b)!);
          luts.set(id, input.maglevCache ? input.maglevCache.table(id, names, memberIds, size, input.seed) : lutOf(maglevTable(names, size, input.seed), memberIds));
        }
        return { ...common, lut_id: id, lut_size: size };
      };
      const frontend = (origin: number, addr: string | null, p: number, set: LutSet) => {
        const key: TpSvcKey = {
          family: TP_FAMILY.TP_FAMILY_IPV4,
          protocol,
          port: p,
          origin,
          nodeport: addr === null ? 1 : 0,
          addr: addr === null ? Buffer.alloc(16) : addrBytes(addr).addr,
        };
        frontends.push({ key, value: valueFor(set) });
      };
      for (const ip of svc.clusterIPs) frontend(TP_SVC_ORIGIN.TP_SVC_FROM_POD, ip, port.port, 'internal');
      for (const ip of [...svc.externalIPs, ...svc.loadBalancerIngress]) {
        frontend(TP_SVC_ORIGIN.TP_SVC_FROM_POD, ip, port.port, 'cluster');
        frontend(TP_SVC_ORIGIN.TP_SVC_FROM_OUTSIDE, ip, port.port, 'external');
      }
      if (port.nodePort !== undefined) {
        frontend(TP_SVC_ORIGIN.TP_SVC_FROM_POD, null, port.nodePort, 'cluster');
        frontend(TP_SVC_ORIGIN.TP_SVC_FROM_OUTSIDE, null, port.nodePort, 'external');
      }
    });
  }
  input.backendIds.end();
  input.maglevCache?.end();
  return { frontends, backends, luts };
}
