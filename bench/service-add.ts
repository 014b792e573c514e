/**
 * Adding one service when 10,000 exist (labs/bench.yaml, agents on, each service with the
 * same backend), against the same change in kube-proxy's modes, alternating round by round:
 *
 *   tcplane    `tcplane apply -f one-more.yaml` of one more service; timed from the
 *              service's write reaching the store (a watch on the services bucket sees
 *              it) to every agent's tcplane-status reporting that services revision
 *              enforced (as bench/propagation.ts and `apply --wait`); the map entries
 *              each agent reports writing for it (status lastReconcile.writes); the CLI's
 *              own wall time (Node start, ClusterIP and port id claims) beside it
 *   iptables   `iptables-legacy-restore --noflush` of the whole ruleset with one more
 *              service, as kube-proxy's iptables mode does on a sync (bench/kube-proxy.ts),
 *              in node n1's namespace; its size in rules
 *   nftables   `nft -f` of the one service's chains and map element, as kube-proxy's
 *              nftables mode syncs incrementally, in node n2's namespace
 * With TCPLANE_BENCH_IPTABLES_NFT=1 also Debian's default iptables-nft backend's restore
 * of the same ruleset (minutes per round at 10,000 services: off by default).
 *
 * Knobs: TCPLANE_BENCH_ROUNDS (5), TCPLANE_BENCH_SERVICES (10000).
 * Writes bench/results/service-add-*.json.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { labNatsUrl } from '../src/lab/state.js';
import { serviceRecord, statusRecord, type StatusRecord } from '../src/store/schema.js';
import { Store } from '../src/store/store.js';
import { iptablesJumps, iptablesRestore, nftRuleset, nftService, type EmulatedService } from './kube-proxy.js';
import { fmt, inNetns, labDown, num, spread, tcplane } from './lab-bench.js';
import { machine, saveResult } from './machine.js';

const LAB = 'labs/bench.yaml';
const ROUNDS = num('TCPLANE_BENCH_ROUNDS', 5);
const N = num('TCPLANE_BENCH_SERVICES', 10_000);
const WITH_IPTABLES_NFT = process.env.TCPLANE_BENCH_IPTABLES_NFT === '1';
const NODES = 2;
const BACKEND = { ip: '10.244.2.10', port: 5201 };
const CLUSTER_CIDR = '10.244.0.0/16';
const SERVICE_CIDR = '10.96.0.0/16';

const svcName = (i: number) => `add-${String(i).padStart(5, '0')}`;

function manifest(file: string, from: number, to: number): string {
  const docs = [];
  for (let i = from; i < to; i++) {
    docs.push(stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: svcName(i), namespace: 'bench' },
      spec: { selector: { app: 'iperf-server' }, ports: [{ name: 'tcp', port: 80, targetPort: BACKEND.port }] },
    }));
  }
  writeFileSync(file, docs.join('---\n'));
  return file;
}

/** The emulations' services: ClusterIPs from 10.96.128.0 up (apart from tcplane's allocations, which do not matter here). */
const emulated = (i: number): EmulatedService => ({
  namespace: 'bench',
  name: svcName(i),
  portName: 'tcp',
  clusterIP: `10.96.${128 + (i >> 8)}.${i & 255}`,
  port: 80,
  endpoints: [BACKEND],
});

/** Status changes and service writes as they arrive, time-stamped. */
class Watcher {
  readonly status: { t: number; s: StatusRecord }[] = [];
  readonly services = new Map<string, { t: number; revision: number }>();
  private readonly handles;

  constructor(store: Store) {
    this.handles = [
      store.watch('status', statusRecord, (c) => {
        if (c.type === 'put') this.status.push({ t: performance.now(), s: c.value });
      }),
      store.watch('services', serviceRecord, (c) => {
        if (c.type === 'put') this.services.set(c.key, { t: performance.now(), revision: c.revision });
      }),
    ];
  }

  get synced(): Promise<unknown> {
    return Promise.all(this.handles.map((h) => h.synced));
  }

  /** When every node first reported services revision ≥ rev, and each node's status then. */
  async enforced(rev: number, timeoutMs = 120_000): Promise<{ t: number; statuses: StatusRecord[] }> {
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; performance.now() < deadline && i < 1_000_000; i++) {
      const first = new Map<string, { t: number; s: StatusRecord }>();
      for (const e of this.status) if ((e.s.revisions.services ?? 0) >= rev && !first.has(e.s.node)) first.set(e.s.node, e);
      if (first.size === NODES) return { t: Math.max(...[...first.values()].map((e) => e.t)), statuses: [...first.values()].map((e) => e.s) };
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error(`bench service-add: agents did not report services revision ${rev}`);
  }

  stop(): void {
    for (const h of this.handles) h.stop();
  }
}

async function main(): Promise<void> {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  labDown();
  tcplane(['lab', 'up', '-f', LAB]);
  const dir = mkdtempSync(join(tmpdir(), 'tcplane-bench-'));
  let store: Store | undefined;
  let watcher: Watcher | undefined;
  try {
    let t = performance.now();
    tcplane(['apply', '-f', manifest(join(dir, 'services.yaml'), 0, N), '--wait', '--timeout', '900s'], { capture: true, timeoutMs: 1_000_000 });
    console.log(`${N} services applied and enforced in ${((performance.now() - t) / 1000).toFixed(1)} s (setup)`);
    for (const args of iptablesJumps()) inNetns('tp-node-n1', ['iptables-legacy', '-w', ...args]);
    const base = Array.from({ length: N }, (_, i) => emulated(i));
    t = performance.now();
    inNetns('tp-node-n1', ['iptables-legacy-restore', '-w', '--noflush'], { input: iptablesRestore(base, CLUSTER_CIDR), timeoutMs: 600_000 });
    console.log(`iptables: ${N} services loaded in ${(performance.now() - t).toFixed(0)} ms (setup)`);
    t = performance.now();
    inNetns('tp-node-n2', ['nft', '-f', '-'], { input: nftRuleset(base, CLUSTER_CIDR, SERVICE_CIDR), timeoutMs: 600_000 });
    console.log(`nftables: ${N} services loaded in ${(performance.now() - t).toFixed(0)} ms (setup)`);
    if (WITH_IPTABLES_NFT) for (const args of iptablesJumps()) inNetns('tp-node-n2', ['iptables-nft', '-w', ...args]);

    store = await Store.connect(await labNatsUrl());
    watcher = new Watcher(store);
    await watcher.synced;
    const samples: Record<string, number[]> = { tcplane: [], 'tcplane apply CLI': [], iptables: [], nftables: [], ...(WITH_IPTABLES_NFT ? { 'iptables-nft': [] } : {}) };
    const writes: Record<string, number>[][] = [];
    let rules = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const i = N + r;
      // tcplane: one more service through the CLI.
      const file = manifest(join(dir, `one-more-${r}.yaml`), i, i + 1);
      t = performance.now();
      tcplane(['apply', '-f', file], { capture: true });
      samples['tcplane apply CLI']!.push(performance.now() - t);
      const key = `bench/${svcName(i)}`;
      for (let k = 0; k < 1000 && !watcher.services.has(key); k++) await new Promise((res) => setTimeout(res, 2));
      const written = watcher.services.get(key);
      if (!written) throw new Error(`bench service-add: ${key} never seen in the store`);
      const done = await watcher.enforced(written.revision);
      samples.tcplane!.push(done.t - written.t);
      writes.push(done.statuses.map((s) => ({ ...s.lastReconcile.writes })));

      // iptables: the whole ruleset again, one service more.
      const all = Array.from({ length: i + 1 }, (_, j) => emulated(j));
      const text = iptablesRestore(all, CLUSTER_CIDR);
      rules = text.split('\n').filter((l) => l.startsWith('-A ')).length;
      t = performance.now();
      inNetns('tp-node-n1', ['iptables-legacy-restore', '-w', '--noflush'], { input: text, timeoutMs: 600_000 });
      samples.iptables!.push(performance.now() - t);

      // nftables: the new service's chains and element only.
      const delta = nftService(emulated(i), CLUSTER_CIDR);
      t = performance.now();
      inNetns('tp-node-n2', ['nft', '-f', '-'], { input: `${delta.join('\n')}\n` });
      samples.nftables!.push(performance.now() - t);

      if (WITH_IPTABLES_NFT) {
        t = performance.now();
        inNetns('tp-node-n2', ['iptables-nft-restore', '-w', '--noflush'], { input: text, timeoutMs: 900_000 });
        samples['iptables-nft']!.push(performance.now() - t);
      }
      console.log(`round ${r + 1}: tcplane ${samples.tcplane!.at(-1)!.toFixed(0)} ms, iptables ${samples.iptables!.at(-1)!.toFixed(0)} ms, nftables ${samples.nftables!.at(-1)!.toFixed(0)} ms`);
    }
    const results = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, spread(v)]));
    console.log(`\nadding one service to ${N} (ms, ${ROUNDS} alternating rounds):`);
    for (const [k, s] of Object.entries(results)) console.log(`  ${k.padEnd(18)} ${fmt(s, 1, ' ms')}`);
    console.log(`  ratio of medians iptables / tcplane: ${(results.iptables!.median / results.tcplane!.median).toFixed(1)}`);
    console.log(`  map entries written per agent, last round: ${JSON.stringify(writes.at(-1))}; iptables rewrites ${rules} rules`);
    const out = saveResult('service-add', { machine: m, services: N, rounds: ROUNDS, nodes: NODES, iptablesBackend: 'iptables-legacy', results, tcplaneMapWrites: writes, iptablesRules: rules });
    console.log(`written: ${out}`);
  } finally {
    watcher?.stop();
    await store?.close();
    labDown();
  }
}

main().catch((err) => {
  console.error(`bench service-add: ${(err as Error).message}`);
  labDown();
  process.exitCode = 1;
});
