/**
 * A node's datapath: the loaded object, its maps (pinned and adopted across agent
 * restarts) and the tc attachments on local pods' veths.
 *
 * Pin layout under `<pinDir>` (the agent uses /sys/fs/bpf/tcplane/<node>):
 *   maps/<map name>               every map of the object
 *   links/<ifindex>-<direction>   tcx links (clsact filters need no pin)
 * A new agent loads the object against the same map pins (the state is kept), adopts
 * the links and swaps its programs in with bpf_link_update: no packet sees a hook
 * without a program. An agent upgraded from tcplane 0.1 migrates its conntrack table
 * on the way (ct-migration.ts): open() starts it, finishMigration() ends it once every
 * hook runs the new programs.
 */
import { existsSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BpfObject, type LoadOptions } from '../bpf/object.js';
import { attachTc, ClsactFilter, TcxLink, type AttachMode, type TcAttachment, type TcDirection } from '../bpf/link.js';
import { BpfMap, MapOfMaps, type TypedMap } from '../bpf/map.js';
import { RingBuffer } from '../bpf/ringbuf.js';
import { MAP_NAMES, PROGRAM_NAMES } from '../gen/bpf-names.js';
import { copyLegacyConntrack, setCtLegacy } from './ct-migration.js';
import { markOutsideConnections } from './uplink-egress-retirement.js';
import { updateConfig } from './runtime-config.js';
import { LutTables, ServiceMapSet } from './service-maps.js';
import { RuleCounters } from './rule-counters.js';
import { TP_REASON } from './reasons.js';
import type { PolicyMaps } from './desired.js';
import { MapMirror, PolicyMapSet } from './sync.js';
import * as S from './structs.js';

export interface DatapathOptions {
  objectPath: string;
  /** Pin maps and links here; without it nothing is pinned (tests, benchmarks). */
  pinDir?: string;
  attachMode?: AttachMode;
  maxEntries?: LoadOptions['maxEntries'];
  rodata?: LoadOptions['rodata'];
}

export interface ReasonCount {
  /** Where it was counted: a pod's veth, or the node's uplink. */
  hook: 'pod' | 'uplink';
  /** Pod hooks: as the pod sees it (ingress = into the pod); uplink: into or out of the node. */
  direction: 'ingress' | 'egress';
  reason: number;
  packets: bigint;
  bytes: bigint;
}

const DIRECTIONS: TcDirection[] = ['ingress', 'egress'];
export type AttachRole = 'pod' | 'uplink';
/**
 * The program per role and tc hook. On a pod's host-side veth tc ingress sees what the
 * pod sends and tc egress what it receives; on the uplink ingress is what arrives, and
 * its egress has no program (see uplink-egress-retirement.ts).
 */
const PROGRAM_FOR: Record<AttachRole, Partial<Record<TcDirection, string>>> = {
  pod: { ingress: PROGRAM_NAMES.tp_from_pod, egress: PROGRAM_NAMES.tp_to_pod },
  uplink: { ingress: PROGRAM_NAMES.tp_from_uplink },
};
/** Link pins: `<ifindex>-<direction>` for pods (as tcplane 0.1 named them), `uplink-<ifindex>-<direction>`. */
const linkPinName = (role: AttachRole, ifindex: number, dir: TcDirection) => `${role === 'uplink' ? 'uplink-' : ''}${ifindex}-${dir}`;
const roleOfPin = (name: string): AttachRole => (name.startsWith('uplink-') ? 'uplink' : 'pod');
/** Metric slots per hook (enum tp_hook). */
const HOOKS: { hook: ReasonCount['hook']; direction: ReasonCount['direction'] }[] = [
  { hook: 'pod', direction: 'ingress' },
  { hook: 'pod', direction: 'egress' },
  { hook: 'uplink', direction: 'ingress' },
  { hook: 'uplink', direction: 'egress' }, // retired: counts nothing now
];

export class NodeDatapath {
  readonly endpoints: TypedMap<S.TpIpKey, S.TpEndpoint>;
  readonly ipcache: TypedMap<S.TpIpKey, S.TpIpcacheValue>;
  readonly ipcidr: TypedMap<S.TpIpcidrKey, S.TpIpcacheValue>;
  readonly policy: TypedMap<S.TpPolicyKey, S.TpPolicyValue>;
  readonly ct: TypedMap<S.TpCtKey, S.TpCtEntry>;
  /** Written by the datapath only (fragment tracking); here for inspection and tests. */
  readonly frag: TypedMap<S.TpFragKey, S.TpFragPorts>;
  readonly config: TypedMap<number, S.TpConfig>;
  readonly svc: TypedMap<S.TpSvcKey, S.TpSvcValue>;
  readonly backends: TypedMap<number, S.TpBackend>;
  /** Written by the datapath only (ClientIP affinity); here for inspection and tests. */
  readonly affinity: TypedMap<S.TpAffinityKey, S.TpAffinityValue>;
  /** The endpoint, ipcache and policy maps, written together by the policy stage. */
  readonly maps: PolicyMapSet;
  /** Frontends, Maglev tables and backends, written together by the services stage. */
  readonly services: ServiceMapSet;
  /** Packets and bytes per policy rule. */
  readonly ruleCounters: RuleCounters;
  private readonly attached = new Map<number, Map<TcDirection, TcAttachment>>();
  /** The interface carrying the uplink programs, if any. */
  private uplink: number | undefined;
  /** Earlier builds' programs on hooks that have none now, until finishRetirement. */
  private retired: TcAttachment[] = [];
  /** tcplane 0.1's conntrack, while it is being migrated; see ct-migration.ts. */
  private legacyCt: TypedMap<S.TpCtKey, S.TpCtEntryV1> | null = null;

  private constructor(
    readonly obj: BpfObject,
    private readonly opts: DatapathOptions,
  ) {
    this.endpoints = obj.map(MAP_NAMES.tp_endpoints_v1).typed(S.tpIpKey, S.tpEndpoint);
    this.ipcache = obj.map(MAP_NAMES.tp_ipcache_v1).typed(S.tpIpKey, S.tpIpcacheValue);
    this.ipcidr = obj.map(MAP_NAMES.tp_ipcidr_v1).typed(S.tpIpcidrKey, S.tpIpcacheValue);
    this.policy = obj.map(MAP_NAMES.tp_policy_v1).typed(S.tpPolicyKey, S.tpPolicyValue);
    this.ct = obj.map(MAP_NAMES.tp_ct_v2).typed(S.tpCtKey, S.tpCtEntry);
    this.frag = obj.map(MAP_NAMES.tp_frag_v1).typed(S.tpFragKey, S.tpFragPorts);
    this.config = obj.map(MAP_NAMES.tp_config_v1).typed(S.u32Key, S.tpConfig);
    this.svc = obj.map(MAP_NAMES.tp_svc_v1).typed(S.tpSvcKey, S.tpSvcValue);
    this.backends = obj.map(MAP_NAMES.tp_backends_v1).typed(S.u32Key, S.tpBackend);
    this.affinity = obj.map(MAP_NAMES.tp_affinity_v1).typed(S.tpAffinityKey, S.tpAffinityValue);
    this.ruleCounters = new RuleCounters(obj.map(MAP_NAMES.tp_rulecnt_v1));
    this.services = new ServiceMapSet(new MapMirror(this.svc), new MapMirror(this.backends), new LutTables(new MapOfMaps(obj.map(MAP_NAMES.tp_lut_v1))));
    this.maps = new PolicyMapSet({
      policy: new MapMirror(this.policy),
      ipcidr: new MapMirror(this.ipcidr),
      ipcache: new MapMirror(this.ipcache),
      endpoints: new MapMirror(this.endpoints),
    });
  }

  static open(opts: DatapathOptions): NodeDatapath {
    const mapDir = opts.pinDir ? join(opts.pinDir, 'maps') : undefined;
    const legacyPin = mapDir ? join(mapDir, MAP_NAMES.tp_ct_v1) : undefined;
    const legacySize = legacyPin ? pinnedMaxEntries(legacyPin) : undefined;
    // A size given for a map applies when it is created: one pinned already keeps its own
    // (libbpf adopts a pin only with the same size), and callers read it back from the map.
    const sizes: Record<string, number> = {};
    for (const [name, n] of Object.entries(opts.maxEntries ?? {})) sizes[name] = (mapDir ? pinnedMaxEntries(join(mapDir, name)) : undefined) ?? n;
    const obj = BpfObject.load(opts.objectPath, {
      pinDir: mapDir,
      // The legacy table must match a pinned one to be adopted; otherwise it is a stub.
      maxEntries: { ...sizes, [MAP_NAMES.tp_ct_v1]: legacySize ?? 1 },
      rodata: opts.rodata,
    });
    try {
      const dp = new NodeDatapath(obj, opts);
      if (legacySize !== undefined) dp.startMigration();
      else if (legacyPin) unlinkSync(legacyPin); // the stub just pinned: nothing to migrate
      dp.adoptLinks();
      return dp;
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  /** Steps 2–3 of ct-migration.ts. */
  private startMigration(): void {
    this.legacyCt = this.obj.map(MAP_NAMES.tp_ct_v1).typed(S.tpCtKey, S.tpCtEntryV1);
    setCtLegacy(this.config, true);
    copyLegacyConntrack(this.legacyCt, this.ct);
  }

  /** Whether a tcplane 0.1 conntrack table is being migrated (until finishMigration). */
  get migrating(): boolean {
    return this.legacyCt !== null;
  }

  /**
   * Step 5 of ct-migration.ts: call once every hook runs this object's programs.
   * Returns how many connections the last copy moved (0 when nothing was migrating).
   */
  finishMigration(): number {
    if (!this.legacyCt) return 0;
    const copied = copyLegacyConntrack(this.legacyCt, this.ct);
    setCtLegacy(this.config, false);
    const pin = this.opts.pinDir ? join(this.opts.pinDir, 'maps', MAP_NAMES.tp_ct_v1) : undefined;
    if (pin && existsSync(pin)) unlinkSync(pin);
    this.legacyCt = null;
    return copied;
  }

  private get linkDir(): string | undefined {
    return this.opts.pinDir ? join(this.opts.pinDir, 'links') : undefined;
  }

  /**
   * Re-points every pinned tcx link (and tcplane's clsact filters, found on attach) at
   * this object's programs; a link on a hook that has no program now (an earlier build's
   * uplink egress) is detached once the others run the new programs.
   */
  private adoptLinks(): void {
    const dir = this.linkDir;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    const retired: TcAttachment[] = [];
    for (const name of readdirSync(dir)) {
      const link = TcxLink.adopt(join(dir, name));
      if (!link) continue;
      const role = roleOfPin(name);
      const program = PROGRAM_FOR[role][link.direction];
      if (role === 'uplink') this.uplink = link.ifindex;
      if (!program) {
        retired.push(link);
        continue;
      }
      link.replace(this.obj.program(program));
      this.record(link);
    }
    this.retired.push(...retired);
  }

  /** Whether an earlier build's program still runs on a hook that has none now (until finishRetirement). */
  get retiring(): boolean {
    return this.retired.length > 0;
  }

  /**
   * Steps 2–3 of uplink-egress-retirement.ts: call once every pod hook runs this
   * object's programs. Returns how many connections it marked.
   */
  finishRetirement(): number {
    if (this.retired.length === 0) return 0;
    const marked = markOutsideConnections(this.ct, this.endpoints);
    for (const a of this.retired) a.detach();
    this.retired = [];
    return marked;
  }

  private record(a: TcAttachment): void {
    const m = this.attached.get(a.ifindex) ?? new Map<TcDirection, TcAttachment>();
    m.set(a.direction, a);
    this.attached.set(a.ifindex, m);
  }

  /** Pod veths that currently carry tcplane's programs (adopted or attached by us); the uplink is not one. */
  attachedInterfaces(): number[] {
    return [...this.attached.keys()].filter((i) => i !== this.uplink);
  }

  /** The interface carrying the uplink programs, if any. */
  get uplinkInterface(): number | undefined {
    return this.uplink;
  }

  /**
   * Puts the programs on both hooks of a pod's host-side veth. Idempotent; write the
   * endpoint's map entries first, since its first packet may follow at once.
   */
  attach(ifindex: number): void {
    this.attachRole(ifindex, 'pod');
  }

  /**
   * Puts the uplink programs on the node's uplink (NodePort and external traffic), taking
   * them off another interface that had them. Idempotent.
   */
  attachUplink(ifindex: number): void {
    if (this.uplink !== undefined && this.uplink !== ifindex) this.detach(this.uplink);
    this.attachRole(ifindex, 'uplink');
    this.uplink = ifindex;
  }

  private attachRole(ifindex: number, role: AttachRole): void {
    for (const dir of DIRECTIONS) {
      const name = PROGRAM_FOR[role][dir];
      if (!name) {
        // An earlier build's clsact filter on this hook: retired by finishRetirement.
        const stale = ClsactFilter.find(ifindex, dir);
        if (stale) this.retired.push(stale);
        continue;
      }
      if (this.attached.get(ifindex)?.has(dir)) continue;
      const prog = this.obj.program(name);
      const mode = this.opts.attachMode ?? 'auto';
      // Our clsact filter from an earlier agent (handle 0x7470): adopted when staying on
      // clsact, removed once a tcx link has taken over (new program first: no gap).
      const existing = ClsactFilter.find(ifindex, dir);
      if (existing && mode === 'clsact') {
        existing.replace(prog);
        this.record(existing);
        continue;
      }
      const a = attachTc(prog, ifindex, dir, mode);
      if (a instanceof TcxLink) {
        if (this.linkDir) a.pin(join(this.linkDir, linkPinName(role, ifindex, dir)));
        existing?.detach();
      }
      this.record(a);
    }
  }

  /** Takes the programs off a veth (and removes their pins). */
  detach(ifindex: number): void {
    for (const a of this.attached.get(ifindex)?.values() ?? []) a.detach();
    this.attached.delete(ifindex);
    if (this.uplink === ifindex) this.uplink = undefined;
  }

  /** Every map the agent writes, as mirrored (for the entry-count metrics). */
  mirrors(): MapMirror<unknown, unknown>[] {
    return [...this.maps.all(), ...this.services.all()];
  }

  /** The cluster-wide seed of the flow hash that picks Maglev slots (tp_config.lb_seed). */
  setLbSeed(seed: number): void {
    updateConfig(this.config, { lb_seed: seed >>> 0 });
  }

  /** A reader of the verdict events (tp_events_v1, bpf/lib/events.h); the caller closes it. */
  openEvents(): RingBuffer {
    return new RingBuffer(this.obj.map(MAP_NAMES.tp_events_v1));
  }

  /** Verdict events sent, held back by the per-endpoint limit, and lost to a full ring buffer, summed over CPUs. */
  readEventStats(): { emitted: bigint; suppressed: bigint; lost: bigint } {
    const slots = this.obj.map(MAP_NAMES.tp_evstats_v1).lookupPerCpu(Buffer.alloc(4)) ?? [];
    const sum = { emitted: 0n, suppressed: 0n, lost: 0n };
    for (const s of slots) {
      const v = S.tpEventStats.decode(s);
      sum.emitted += v.emitted;
      sum.suppressed += v.suppressed;
      sum.lost += v.lost;
    }
    return sum;
  }

  /** Packets and bytes per hook and reason, summed over CPUs; zero rows omitted. */
  readMetrics(): ReasonCount[] {
    const m = this.obj.map(MAP_NAMES.tp_metrics_v2);
    const out: ReasonCount[] = [];
    const key = Buffer.alloc(4);
    HOOKS.forEach((h, hook) => {
      for (let reason = 0; reason < TP_REASON.TP_REASON_MAX; reason++) {
        key.writeUInt32LE(hook * TP_REASON.TP_REASON_MAX + reason);
        const slots = m.lookupPerCpu(key);
        if (!slots) continue;
        let packets = 0n;
        let bytes = 0n;
        for (const s of slots) {
          const v = S.tpMetricsValue.decode(s);
          packets += v.packets;
          bytes += v.bytes;
        }
        if (packets !== 0n) out.push({ ...h, reason, packets, bytes });
      }
    });
    return out;
  }

  /** Closes this process's handles; pinned maps and attached programs stay. */
  // (A migration left unfinished is taken up again by the next agent: copies never overwrite.)
  close(): void {
    for (const m of this.attached.values()) for (const a of m.values()) a.close();
    this.attached.clear();
    this.obj.close();
  }
}

/** max_entries of a pinned map, or undefined when nothing is pinned there. */
function pinnedMaxEntries(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const m = BpfMap.fromPin(path);
  try {
    return m.info.maxEntries;
  } finally {
    m.close();
  }
}
