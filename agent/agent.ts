/**
 * The node agent: watches the cluster store, computes what its node's maps must hold,
 * and writes only the difference.
 *
 *   store watches ──▶ in-memory view (view.ts) ──schedule──▶ reconcile (one at a time),
 *                     marking the stages a change          running only stale stages:
 *                     makes stale                            endpoints  identities, endpoint records (local-endpoints.ts)
 *                                                            policy     compile → diff → map writes
 *                                                            services   frontends, Maglev tables, backends
 *                                                          then attach/detach veth programs and report status
 *
 * The status a reconcile writes names the store revisions seen when it started. The view
 * may move on while it runs (a change arriving then schedules one more run), so its maps
 * hold at least that state, possibly newer: once a node reports revision R of the
 * policies bucket, every policy change up to R is in its maps or superseded by a later one.
 */
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ensureBpffs } from '../src/bpf/bpffs.js';
import { NodeDatapath } from '../src/datapath/node-datapath.js';
import { IdentityAllocator } from '../src/identity/allocator.js';
import type { SyncResult } from '../src/datapath/sync.js';
import { addrBytes, addrString, canonicalIP } from '../src/datapath/addr.js';
import { compile } from '../src/policy/compile.js';
import { policyDocumentSchema } from '../src/policy/schema.js';
import { BackendIds, backendKey } from '../src/services/backend-ids.js';
import { ServiceCompiler } from '../src/services/compile.js';
import { healthChecks } from '../src/services/health-checks.js';
import { updateConfig } from '../src/datapath/runtime-config.js';
import { ifindexOf } from '../src/bpf/link.js';
import { HealthCheckServers } from './health-check.js';
import { serviceSchema } from '../src/services/schema.js';
import {
  endpointRecord,
  identityEntry,
  namespaceRecord,
  clusterConfig,
  CLUSTER_CONFIG_KEY,
  nodeRecord,
  nodePodCIDRs,
  HOSTNAME_LABEL,
  podKey,
  podRecord,
  policyRecord,
  serviceRecord,
  type BucketKind,
  type NodeRecord,
  type StatusRecord,
} from '../src/store/schema.js';
import { Store, type Change, type WatchHandle } from '../src/store/store.js';
import { VERSION } from '../src/version.js';
import { reconcileLocalEndpoints, type LocalEndpoints } from './local-endpoints.js';
import { AgentMetrics } from './metrics.js';
import { FlowReporter, policyNames, type PodName } from './flows.js';
import { serveRuleCounters } from './rule-counters.js';
import type { PolicyMaps, PolicyRef } from '../src/datapath/desired.js';
import { fitPolicyMap } from '../src/datapath/capacity.js';
import type { AgentOptions } from './options.js';
import { emptyView, STAGES, STALE_AFTER, type Stage } from './view.js';
import type { Server } from 'node:http';

const RETRY_MS = 1000;

export class Agent {
  private readonly view = emptyView();
  /** Stages whose inputs changed since they last ran; the first reconcile runs them all. */
  private stale = new Set<Stage>(STAGES);
  /** The endpoints stage's last result, for the stages after it. */
  private local: LocalEndpoints = { endpoints: [], pending: new Set() };
  /** Backend ids as the pinned backends map holds them (adopted at start). */
  private backendIds!: BackendIds;
  private healthServers: HealthCheckServers | null = null;
  /** Remembers each service's compiled entries: a change recompiles only what it touches. */
  private readonly serviceCompiler = new ServiceCompiler();
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
  private flows: FlowReporter | null = null;
  /** What each rule id in the policy entries stands for (counters and events name rules by it). */
  private ruleNames = new Map<number, PolicyRef>();
  private countersSub: { unsubscribe(): void } | null = null;
  /** Endpoints that failed closed at the last policy stage (capacity.ts), as the status reports them. */
  private failedClosed: NonNullable<StatusRecord['failedClosed']> = [];
  /** Endpoint ids that had their entries at the last policy stage, with how many: they keep them first. */
  private fitted = new Map<number, number>();

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
      maxEntries: {
        ...opts.mapEntries,
        ...(opts.ctMaxEntries ? { tp_ct_v2: opts.ctMaxEntries } : {}),
        ...(opts.lbMaxBackends ? { tp_backends_v1: opts.lbMaxBackends } : {}),
        ...(opts.eventRingBytes ? { tp_events_v1: opts.eventRingBytes } : {}),
        ...(opts.policyMapEntries ? { tp_policy_v1: opts.policyMapEntries } : {}),
      },
      rodata: { tp_forward_on: opts.hostRouting === 'bpf' ? 1 : 0, tp_events_on: opts.events === 'on' ? 1 : 0, tp_event_sample_allowed: opts.eventSample, tp_event_rate_per_s: opts.eventRate },
    });
    log.info(
      { pinDir: this.pinDir, adoptedMaps: this.dp.obj.adoptedMaps, adoptedLinks: this.dp.attachedInterfaces().length },
      'datapath loaded',
    );
    this.backendIds = new BackendIds(
      [...this.dp.services.backends.keys()].map((id) => {
        const b = this.dp.services.backends.get(id)!;
        return [backendKey(b.service_id, addrString(b.family, b.addr), b.port, b.protocol), id] as [string, number];
      }),
      this.dp.backends.raw.info.maxEntries,
    );
    this.metrics = new AgentMetrics(this.dp, () => this.ruleNames);
    // Health checks of Local load balancer services, on the node's uplink address (or all).
    const uplinkAddrs = (opts.uplink ? (networkInterfaces()[opts.uplink] ?? []) : [])
      .filter((a) => a.family === 'IPv4' || (this.dualStack && !isLinkLocal6(a.address)))
      .map((a) => a.address);
    this.healthServers = new HealthCheckServers(uplinkAddrs.length > 0 ? uplinkAddrs : ['0.0.0.0'], log);
    if (opts.metricsAddress !== 'none') {
      this.metricsServer = await this.metrics.serve(opts.metricsAddress);
      log.info({ address: opts.metricsAddress }, 'serving /metrics');
    }
    this.store = await Store.connect(opts.nats, { name: `tcplane-agent-${opts.node}` });
    this.allocator = new IdentityAllocator(this.store);
    this.flows = new FlowReporter(this.dp.openEvents(), this.store.nc, { node: opts.node, historySize: opts.flowHistory, pollMs: 100, stats: () => this.dp.readEventStats() }, log);
    this.flows.start();
    this.countersSub = serveRuleCounters(this.store.nc, opts.node, this.dp.ruleCounters, () => this.ruleNames, log);

    const hostAddresses = this.hostAddresses();
    // Labels are the store's once the node is registered (`lab label node` may have changed them).
    const registered = await this.store.get('nodes', opts.node, nodeRecord).catch((err: unknown) => {
      log.warn({ err }, 'the node record in the store does not parse: registering afresh');
      return undefined;
    });
    const self: NodeRecord = {
      v: 1,
      name: opts.node,
      addresses: hostAddresses,
      podCIDR: opts.podCIDRs.find((c) => !c.includes(':')),
      podCIDRs: opts.podCIDRs,
      labels: { ...(registered?.value.labels ?? opts.nodeLabels), [HOSTNAME_LABEL]: opts.node },
      agentVersion: VERSION,
      startedAt: new Date().toISOString(),
    };
    await this.store.put('nodes', opts.node, nodeRecord.parse(self));

    this.watchInto('pods', podRecord, (k, v) => this.view.pods.set(k, v), (k) => this.view.pods.delete(k));
    this.watchInto('namespaces', namespaceRecord, (k, v) => this.view.namespaces.set(k, v), (k) => this.view.namespaces.delete(k));
    this.watchInto('endpoints', endpointRecord, (k, v) => this.view.endpoints.set(k, v), (k) => this.view.endpoints.delete(k));
    this.watchInto('nodes', nodeRecord, (k, v) => this.view.nodes.set(k, v), (k) => this.view.nodes.delete(k));
    this.watchSpecs('policies', policyRecord, policyDocumentSchema, this.view.policies);
    this.watchSpecs('services', serviceRecord, serviceSchema, this.view.services);
    this.watchInto(
      'cluster',
      clusterConfig,
      (k, v) => {
        if (k === CLUSTER_CONFIG_KEY) this.view.cluster = v;
      },
      (k) => {
        if (k === CLUSTER_CONFIG_KEY) this.view.cluster = undefined;
      },
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
      for (const stage of STALE_AFTER[kind] ?? []) this.stale.add(stage);
      this.schedule();
    });
    this.watches.push(w);
  }

  /**
   * Watches a bucket of records that carry a document in `spec` (policies, services)
   * into `into`, each checked with `specSchema`: one that fails is logged and left out.
   */
  private watchSpecs<R extends { spec: unknown }, T>(
    kind: BucketKind,
    recordSchema: import('zod').ZodType<R>,
    specSchema: import('zod').ZodType<T>,
    into: Map<string, T>,
  ): void {
    this.watchInto(
      kind,
      recordSchema,
      (k, v) => {
        const doc = specSchema.safeParse(v.spec);
        if (doc.success) return void into.set(k, doc.data);
        into.delete(k);
        const i = doc.error.issues[0];
        this.log.error({ bucket: kind, key: k, error: `${i?.path.join('.') || '(spec)'}: ${i?.message}` }, 'record with an invalid document; ignored');
      },
      (k) => into.delete(k),
    );
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
    const stale = this.stale;
    this.stale = new Set();
    const result: SyncResult = { writes: {}, deletes: {} };
    try {
      if (stale.has('endpoints')) {
        this.local = await reconcileLocalEndpoints(node, this.view, this.allocator, this.store, this.log);
      }
      if (stale.has('policy')) addResult(result, this.syncPolicy());
      if (stale.has('services')) {
        addResult(result, this.syncServices());
        this.attachUplink();
        await this.healthServers?.sync(healthChecks(this.view.services.values(), [...this.view.pods.values()], node));
      }
      // Programs on veths: after the maps, so a pod's first packet finds its entries.
      if (stale.has('endpoints')) this.attachPrograms();
    } catch (err) {
      for (const s of stale) this.stale.add(s); // run again, all of them
      throw err;
    }

    for (const [map, n] of Object.entries(result.writes)) if (n) this.metrics.mapWrites.inc({ map, op: 'write' }, n);
    for (const [map, n] of Object.entries(result.deletes)) if (n) this.metrics.mapWrites.inc({ map, op: 'delete' }, n);
    this.metrics.endpoints.set(this.local.endpoints.length);
    for (const [bucket, rev] of Object.entries(revisions)) this.metrics.revision.set({ bucket }, rev);
    const changed = Object.values(result.writes).some((n) => n > 0) || Object.values(result.deletes).some((n) => n > 0);
    if (changed) this.log.info({ writes: result.writes, deletes: result.deletes, endpoints: this.local.endpoints.length, stages: [...stale] }, 'maps updated');

    this.lastStatus = {
      v: 1,
      node,
      revisions: revisions as Record<string, number>,
      endpoints: this.local.endpoints.length,
      lastReconcile: { at: new Date().toISOString(), writes: result.writes, deletes: result.deletes },
      ...(this.failedClosed.length > 0 ? { failedClosed: this.failedClosed } : {}),
      updatedAt: new Date().toISOString(),
    };
    await this.writeStatus(false);
    if (this.local.pending.size > 0) {
      this.stale.add('endpoints').add('policy');
      this.retryLater();
    }
  }

  /** The policy stage: identities and policies → endpoint, ipcache and policy maps. */
  private syncPolicy(): SyncResult {
    const v = this.view;
    const desired = compile({
      node: this.opts.node,
      localEndpoints: this.local.endpoints,
      // Ports from the pod records: egress named ports resolve against each destination's.
      clusterEndpoints: [...v.endpoints.values()].map((e) => ({ ips: e.ips, identity: e.identity, ports: v.pods.get(podKey(e.namespace, e.name))?.ports })),
      identities: v.identities,
      policies: [...v.policies.values()],
      nodes: [...v.nodes.values()]
        .filter((n) => n.name !== this.opts.node)
        .map((n) => ({ name: n.name, addresses: n.addresses, podCIDRs: nodePodCIDRs(n), labels: n.labels ?? { [HOSTNAME_LABEL]: n.name } })),
      hostAddresses: this.hostAddresses(),
      hostLabels: v.nodes.get(this.opts.node)?.labels ?? { [HOSTNAME_LABEL]: this.opts.node },
    });
    const fit = this.fitPolicy(desired);
    const names = policyNames(desired.rules, desired.isolation);
    this.ruleNames = names.rules;
    // Counters first: a rule's first packets find its entry.
    const [, , uncounted] = this.dp.ruleCounters.sync(names.rules.keys());
    if (uncounted > 0) this.log.warn({ uncounted, map: 'tp_rulecnt_v1' }, 'more policy rules than the rule counter map holds: some rules go uncounted (their verdicts are unaffected)');
    const pods = new Map<string, PodName>();
    for (const e of v.endpoints.values()) for (const ip of e.ips) pods.set(ip, { namespace: e.namespace, name: e.name });
    this.flows?.setNames({
      ...names,
      endpoints: new Map(this.local.endpoints.map((e) => [e.id, { namespace: e.namespace, name: e.name }])),
      pods,
    });
    return this.dp.maps.sync(fit);
  }

  /**
   * Full maps fail closed (src/datapath/capacity.ts): the endpoints whose entries do not
   * fit the budget admit nothing; each is logged (once, when it fails), counted in the
   * metrics and named in the status record, where `apply --wait` and `get nodes` read it.
   */
  private fitPolicy(desired: PolicyMaps): PolicyMaps {
    const size = this.dp.policy.raw.info.maxEntries;
    const limit = Math.min(this.opts.policyMapEntries ?? size, size);
    const { maps, failed, fitted } = fitPolicyMap(desired, { policyEntries: limit, perEndpoint: this.opts.policyEntriesPerEndpoint }, this.fitted);
    const byId = new Map(this.local.endpoints.map((e) => [e.id, e.key]));
    const was = new Set(this.failedClosed.map((f) => f.endpoint));
    this.failedClosed = failed.map((f) => ({
      endpoint: byId.get(f.endpointId) ?? `endpoint ${f.endpointId}`,
      needed: f.needed,
      limit: f.why === 'per-endpoint limit' ? this.opts.policyEntriesPerEndpoint : limit,
      why: f.why,
    }));
    for (const f of this.failedClosed) {
      if (!was.has(f.endpoint)) this.log.error({ endpoint: f.endpoint, neededEntries: f.needed, limit: f.limit, why: f.why }, 'endpoint failed closed: its policy entries do not fit; it admits nothing until they do');
    }
    for (const e of was) if (!this.failedClosed.some((f) => f.endpoint === e)) this.log.info({ endpoint: e }, 'endpoint no longer failed closed: its policy entries fit again');
    this.metrics.failedClosed.set(failed.length);
    this.fitted = fitted;
    return maps;
  }

  /** The services stage: services and pods → frontends, Maglev tables, backends. */
  private syncServices(): SyncResult {
    const cfg = this.view.cluster;
    if (!cfg && this.view.services.size > 0) this.log.warn('services in the store but no cluster config yet: not programmed');
    if (cfg) this.dp.setLbSeed(cfg.maglevSeed);
    const serviceNames = new Map<number, string>();
    for (const svc of this.view.services.values()) for (const p of svc.ports) if (p.id !== undefined) serviceNames.set(p.id, `${svc.namespace}/${svc.name}`);
    this.flows?.setNames({ services: serviceNames });
    const desired = this.serviceCompiler.compile({
      node: this.opts.node,
      services: cfg ? [...this.view.services.values()] : [],
      pods: [...this.view.pods.values()],
      seed: cfg?.maglevSeed ?? 0,
      maxTableSize: cfg?.maglevMaxTableSize ?? 16381,
      backendIds: this.backendIds,
      currentTableSize: (id) => this.dp.services.luts.table(id)?.length,
    });
    return this.dp.services.sync(desired);
  }

  /**
   * The uplink programs, on the interface --uplink names, with the node's address there
   * as the source of SNATed connections. After the service maps: its first packet may
   * follow at once.
   */
  private attachUplink(): void {
    const name = this.opts.uplink;
    if (!name) return;
    const ifindex = ifindexOf(name);
    const addrs = networkInterfaces()[name] ?? [];
    const v4 = addrs.find((a) => a.family === 'IPv4')?.address;
    const v6 = addrs.find((a) => a.family === 'IPv6' && !isLinkLocal6(a.address))?.address;
    updateConfig(this.dp.config, {
      uplink_ifindex: ifindex,
      node_addr4: v4 ? addrBytes(v4).addr.subarray(0, 4) : Buffer.alloc(4),
      node_addr6: v6 ? addrBytes(v6).addr : Buffer.alloc(16),
    });
    if (this.dp.uplinkInterface !== ifindex) {
      this.dp.attachUplink(ifindex);
      this.log.info({ uplink: name, ifindex, address: v4 ?? null, address6: v6 ?? null }, 'uplink programs attached (NodePort, external traffic)');
    }
  }

  /** Puts the programs on every local pod's veth and takes them off veths of pods gone. */
  private attachPrograms(): void {
    const wanted = new Set(this.local.endpoints.map((e) => e.ifindex));
    for (const ifindex of wanted) this.dp.attach(ifindex);
    for (const ifindex of this.dp.attachedInterfaces()) if (!wanted.has(ifindex)) this.dp.detach(ifindex);
    if (this.dp.migrating) {
      // Every hook runs our programs now: end the conntrack migration (ct-migration.ts).
      this.log.info({ copied: this.dp.finishMigration() }, 'conntrack migrated from tp_ct_v1 to tp_ct_v2');
    }
    if (this.dp.retiring && this.local.pending.size === 0) {
      // Likewise, once every pod runs our programs (a pending one may still run an earlier
      // build's on clsact): take that build's uplink egress program off (uplink-egress-retirement.ts).
      this.log.info({ marked: this.dp.finishRetirement() }, 'uplink egress program retired; local backends reply through tp_from_pod');
    }
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

  /** Whether this node has an IPv6 pod range: only then are its IPv6 addresses published and served. */
  private get dualStack(): boolean {
    return this.opts.podCIDRs.some((c) => c.includes(':'));
  }

  /**
   * Addresses of this node's interfaces (its network namespace), loopback and IPv6
   * link-local excluded; IPv6 ones only on a dual-stack node, so a single-stack cluster's
   * node records stay readable by agents from before dual-stack (whose schema takes IPv4
   * only) during a rolling upgrade.
   */
  private hostAddresses(): string[] {
    const out: string[] = [];
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) {
        if (a.internal || (a.family === 'IPv6' && (!this.dualStack || isLinkLocal6(a.address)))) continue;
        out.push(canonicalIP(a.address)!);
      }
    }
    return [...new Set(out)].sort();
  }

  /** Stops watching and closes handles. Maps and attached programs stay: traffic goes on. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const w of this.watches) w.stop();
    this.flows?.stop();
    this.countersSub?.unsubscribe();
    this.metricsServer?.close();
    this.healthServers?.close();
    await this.running?.catch(() => undefined);
    await this.store?.close();
    this.dp?.close();
  }
}

/** fe80::/10: never a node's address for other nodes (every veth has one). */
const isLinkLocal6 = (ip: string) => /^fe[89ab]/i.test(ip);

function addResult(into: SyncResult, r: SyncResult): void {
  Object.assign(into.writes, r.writes);
  Object.assign(into.deletes, r.deletes);
}
