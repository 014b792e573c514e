/**
 * The node agent: watches the cluster store, computes what its node's maps must hold,
 * and writes only the difference.
 *
 *   store watches ──▶ in-memory view ──schedule──▶ reconcile (one at a time)
 *                                                   1. identities for local pods (KV create)
 *                                                   2. publish local endpoints
 *                                                   3. compile → diff → map writes
 *                                                   4. attach/detach veth programs
 *                                                   5. report status (revisions enforced)
 *
 * The status a reconcile writes names the store revisions seen when it started. The view
 * may move on while it runs (a change arriving then schedules one more run), so its maps
 * hold at least that state, possibly newer: once a node reports revision R of the
 * policies bucket, every policy change up to R is in its maps or superseded by a later one.
 */
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ifindexOf } from '../src/bpf/link.js';
import { ensureBpffs } from '../src/bpf/bpffs.js';
import { NodeDatapath } from '../src/datapath/node-datapath.js';
import { IdentityAllocator } from '../src/identity/allocator.js';
import type { IdentityLabels } from '../src/identity/labels.js';
import { compile, type LocalEndpoint } from '../src/policy/compile.js';
import { policyDocumentSchema } from '../src/policy/schema.js';
import type { PolicyDocument } from '../src/policy/types.js';
import {
  endpointRecord,
  identityEntry,
  namespaceRecord,
  nodeRecord,
  podRecord,
  policyRecord,
  type BucketKind,
  type EndpointRecord,
  type NamespaceRecord,
  type NodeRecord,
  type PodRecord,
  type StatusRecord,
} from '../src/store/schema.js';
import { Store, type Change, type WatchHandle } from '../src/store/store.js';
import { VERSION } from '../src/version.js';
import { AgentMetrics } from './metrics.js';
import type { AgentOptions } from './options.js';
import type { Server } from 'node:http';

interface View {
  pods: Map<string, PodRecord>;
  namespaces: Map<string, NamespaceRecord>;
  policies: Map<string, PolicyDocument>;
  endpoints: Map<string, EndpointRecord>;
  identities: Map<number, IdentityLabels>;
  nodes: Map<string, NodeRecord>;
}

const RETRY_MS = 1000;

export class Agent {
  private readonly view: View = {
    pods: new Map(),
    namespaces: new Map(),
    policies: new Map(),
    endpoints: new Map(),
    identities: new Map(),
    nodes: new Map(),
  };
  private readonly revisions: Partial<Record<BucketKind, number>> = {};
  private readonly watches: WatchHandle[] = [];
  private store!: Store;
  private dp!: NodeDatapath;
  private allocator!: IdentityAllocator;
  private dirty = false;
  /** False until every watch has delivered the store's current state: no reconcile before. */
  private synced = false;
  private running: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastStatus: StatusRecord | null = null;
  private metrics!: AgentMetrics;
  private metricsServer: Server | null = null;

  constructor(
    private readonly opts: AgentOptions,
    private readonly log: Logger,
  ) {}

  get pinDir(): string {
    return join(this.opts.bpffsRoot, this.opts.node);
  }

  async start(): Promise<void> {
    const { opts, log } = this;
    ensureBpffs();
    this.dp = NodeDatapath.open({
      objectPath: opts.objectPath,
      pinDir: this.pinDir,
      attachMode: opts.attachMode,
      maxEntries: opts.ctMaxEntries ? { tp_ct_v2: opts.ctMaxEntries } : undefined,
    });
    log.info(
      { pinDir: this.pinDir, adoptedMaps: this.dp.obj.adoptedMaps, adoptedLinks: this.dp.attachedInterfaces().length },
      'datapath loaded',
    );
    this.metrics = new AgentMetrics(this.dp);
    if (opts.metricsAddress !== 'none') {
      this.metricsServer = await this.metrics.serve(opts.metricsAddress);
      log.info({ address: opts.metricsAddress }, 'serving /metrics');
    }
    this.store = await Store.connect(opts.nats, { name: `tcplane-agent-${opts.node}` });
    this.allocator = new IdentityAllocator(this.store);

    const hostAddresses = this.hostAddresses();
    const self: NodeRecord = {
      v: 1,
      name: opts.node,
      addresses: hostAddresses,
      podCIDR: opts.podCIDR,
      agentVersion: VERSION,
      startedAt: new Date().toISOString(),
    };
    await this.store.put('nodes', opts.node, nodeRecord.parse(self));

    this.watchInto('pods', podRecord, (k, v) => this.view.pods.set(k, v), (k) => this.view.pods.delete(k));
    this.watchInto('namespaces', namespaceRecord, (k, v) => this.view.namespaces.set(k, v), (k) => this.view.namespaces.delete(k));
    this.watchInto('endpoints', endpointRecord, (k, v) => this.view.endpoints.set(k, v), (k) => this.view.endpoints.delete(k));
    this.watchInto('nodes', nodeRecord, (k, v) => this.view.nodes.set(k, v), (k) => this.view.nodes.delete(k));
    this.watchInto(
      'policies',
      policyRecord,
      (k, v) => {
        const doc = policyDocumentSchema.safeParse(v.spec);
        if (!doc.success) {
          this.view.policies.delete(k);
          log.error({ key: k, error: doc.error.issues[0]?.message }, 'policy record has an invalid document; ignored');
          return;
        }
        this.view.policies.set(k, doc.data);
      },
      (k) => this.view.policies.delete(k),
    );
    this.watchInto(
      'identities',
      identityEntry,
      (k, v) => {
        this.allocator.observe({ key: k, value: v });
        if (!k.startsWith('id/')) return;
        const n = Number(k.slice(3));
        if ('labels' in v && v.id === n) return void this.view.identities.set(n, v.labels);
        this.view.identities.delete(n);
        log.error({ bucket: 'identities', key: k }, 'identity record without labels or with another number; ignored');
      },
      (k) => {
        this.allocator.observe({ key: k });
        if (k.startsWith('id/')) this.view.identities.delete(Number(k.slice(3)));
      },
    );
    await Promise.all(this.watches.map((w) => w.synced));
    log.info({ addresses: hostAddresses }, 'store synced');
    // A reconcile on a partial view would delete what the missing buckets justify (a
    // restarted agent would withdraw every entry, then write it back): only now.
    this.synced = true;
    this.schedule();
    await this.running;
    this.heartbeat = setInterval(() => void this.writeStatus(true), opts.statusIntervalMs);
  }

  private watchInto<T>(
    kind: BucketKind,
    schema: import('zod').ZodType<T>,
    put: (key: string, v: T) => void,
    del: (key: string) => void,
    skipInvalid: (key: string) => boolean = () => false,
  ): void {
    const w = this.store.watch(kind, schema, (c: Change<T>) => {
      if (c.type === 'put') put(c.key, c.value);
      else if (c.type === 'delete') del(c.key);
      else if (!skipInvalid(c.key)) {
        del(c.key);
        this.log.error({ bucket: kind, key: c.key, error: c.error }, 'invalid record in store; ignored');
      }
      this.revisions[kind] = Math.max(this.revisions[kind] ?? 0, c.revision);
      this.schedule();
    });
    this.watches.push(w);
  }

  /** Asks for a reconcile; calls arriving while one runs fold into one more run. */
  private schedule(): void {
    this.dirty = true;
    if (!this.synced || this.running || this.stopped) return;
    this.running = (async () => {
      // Let a burst of watch events land before computing.
      await new Promise((r) => setTimeout(r, 5));
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        const done = this.metrics.reconcileSeconds.startTimer();
        try {
          await this.reconcile();
          this.metrics.reconciles.inc();
          done();
        } catch (err) {
          this.metrics.reconcileErrors.inc();
          this.log.error({ err }, 'reconcile failed; retrying');
          this.retryLater();
        }
      }
      this.running = null;
    })();
  }

  private retryLater(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.schedule();
    }, RETRY_MS);
  }

  private async reconcile(): Promise<void> {
    const node = this.opts.node;
    const revisions = { ...this.revisions };
    const v = this.view;

    // 1. Local pods, their identities and interfaces.
    const local: LocalEndpoint[] = [];
    const pending = new Set<string>(); // local pods whose veth is not there yet
    for (const [key, pod] of v.pods) {
      if (pod.node !== node || !pod.ready) continue;
      const labels: IdentityLabels = {
        namespace: pod.namespace,
        pod: pod.labels,
        namespaceLabels: v.namespaces.get(pod.namespace)?.labels ?? {},
      };
      let identity: number;
      try {
        identity = await this.allocator.resolve(labels);
      } catch (err) {
        // A corrupt claim (or a store hiccup) for this label set must not stop every
        // other pod: keep the identity this pod was published with, else wait for it.
        const published = v.endpoints.get(key);
        this.log.error({ pod: key, err: (err as Error).message, keeping: published?.identity ?? null }, 'identity not resolved');
        if (!published || published.node !== node) {
          pending.add(key);
          continue;
        }
        identity = published.identity;
      }
      if (!v.identities.has(identity)) v.identities.set(identity, labels);
      let ifindex: number;
      try {
        ifindex = ifindexOf(pod.ifname);
      } catch {
        this.log.warn({ pod: key, ifname: pod.ifname }, 'pod interface not found yet');
        pending.add(key);
        continue;
      }
      local.push({ key, namespace: pod.namespace, name: pod.name, ips: pod.ips, id: ifindex, ifindex, identity, labels: pod.labels });
    }

    // 2. Publish local endpoints; withdraw ours that have no pod any more.
    const localKeys = new Set(local.map((e) => e.key));
    for (const e of local) {
      const rec: EndpointRecord = { v: 1, namespace: e.namespace, name: e.name, node, ips: e.ips, identity: e.identity };
      const have = v.endpoints.get(e.key);
      if (!have || have.identity !== rec.identity || have.node !== node || have.ips.join() !== rec.ips.join()) {
        await this.store.put('endpoints', e.key, rec);
        v.endpoints.set(e.key, rec);
      }
    }
    for (const [key, rec] of v.endpoints) {
      if (rec.node === node && !localKeys.has(key) && !pending.has(key)) {
        await this.store.delete('endpoints', key);
        v.endpoints.delete(key);
      }
    }

    // 3. Maps.
    const desired = compile({
      node,
      localEndpoints: local,
      clusterEndpoints: [...v.endpoints.values()],
      identities: v.identities,
      policies: [...v.policies.values()],
      nodes: [...v.nodes.values()].filter((n) => n.name !== node),
      hostAddresses: this.hostAddresses(),
    });
    const result = this.dp.maps.sync(desired);

    // 4. Programs on veths: after the maps, so a pod's first packet finds its entries.
    const wanted = new Set(local.map((e) => e.ifindex));
    for (const ifindex of wanted) this.dp.attach(ifindex);
    for (const ifindex of this.dp.attachedInterfaces()) if (!wanted.has(ifindex)) this.dp.detach(ifindex);
    if (this.dp.migrating) {
      // Every hook runs our programs now: end the conntrack migration (ct-migration.ts).
      this.log.info({ copied: this.dp.finishMigration() }, 'conntrack migrated from tp_ct_v1 to tp_ct_v2');
    }

    for (const [map, n] of Object.entries(result.writes)) if (n) this.metrics.mapWrites.inc({ map, op: 'write' }, n);
    for (const [map, n] of Object.entries(result.deletes)) if (n) this.metrics.mapWrites.inc({ map, op: 'delete' }, n);
    this.metrics.endpoints.set(local.length);
    for (const [bucket, rev] of Object.entries(revisions)) this.metrics.revision.set({ bucket }, rev);
    const changed = Object.values(result.writes).some((n) => n > 0) || Object.values(result.deletes).some((n) => n > 0);
    if (changed) this.log.info({ writes: result.writes, deletes: result.deletes, endpoints: local.length }, 'maps updated');

    // 5. Status.
    this.lastStatus = {
      v: 1,
      node,
      revisions: revisions as Record<string, number>,
      endpoints: local.length,
      lastReconcile: { at: new Date().toISOString(), writes: result.writes, deletes: result.deletes },
      updatedAt: new Date().toISOString(),
    };
    await this.writeStatus(false);
    if (pending.size > 0) this.retryLater();
  }

  private async writeStatus(heartbeat: boolean): Promise<void> {
    if (!this.lastStatus || this.stopped) return;
    if (heartbeat) this.lastStatus = { ...this.lastStatus, updatedAt: new Date().toISOString() };
    try {
      await this.store.put('status', this.opts.node, this.lastStatus);
    } catch (err) {
      this.log.warn({ err }, 'status write failed');
    }
  }

  /** IPv4 addresses of this node's interfaces (its network namespace), loopback excluded. */
  private hostAddresses(): string[] {
    const out: string[] = [];
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) out.push(a.address);
    }
    return out.sort();
  }

  /** Stops watching and closes handles. Maps and attached programs stay: traffic goes on. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.watches) w.stop();
    this.metricsServer?.close();
    await this.running?.catch(() => undefined);
    await this.store?.close();
    this.dp?.close();
  }
}
