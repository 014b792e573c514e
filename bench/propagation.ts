/**
 * How fast a change reaches every node's maps, in the three-node lab with real agents:
 *   apply     `apply -f` of one policy until every agent reports that store revision
 *             enforced (what `apply --wait` waits for)
 *   relabel   a pod relabel (the pod's node allocates an identity, publishes its
 *             endpoint; every node recompiles) until every agent reports both the
 *             endpoint revision carrying the new identity and the revision of that
 *             identity's record enforced (they arrive through different buckets)
 * The baseline in the same run is one store round trip (put + read back), the floor
 * under any propagation. Writes bench/results/propagation-*.json.
 */
import { spawnSync } from 'node:child_process';
import { parsePolicyFile } from '../src/policy/parse.js';
import { CLI_ENTRY, PACKAGE_ROOT } from '../src/paths.js';
import { labNatsUrl } from '../src/lab/state.js';
import { endpointRecord, identityRecord, podRecord, policyKey, statusRecord, type StatusRecord } from '../src/store/schema.js';
import { Store } from '../src/store/store.js';
import { machine, saveResult } from './machine.js';

const LAB = 'labs/three-nodes.yaml';
const ROUNDS = 10;

function tcplane(args: string[]): void {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: PACKAGE_ROOT, stdio: 'inherit', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`tcplane ${args.join(' ')}: exit ${r.status ?? r.signal}`);
}

/** Resolves when every node's status satisfies ok; returns the elapsed ms since start. */
async function until(store: Store, start: number, ok: (s: StatusRecord) => boolean): Promise<number> {
  for (let i = 0; i < 20_000; i++) {
    const all = [...(await store.list('status', statusRecord)).entries.values()].map((e) => e.value);
    if (all.length === 3 && all.every(ok)) return performance.now() - start;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error('bench propagation: agents never caught up');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  tcplane(['lab', 'up', '-f', LAB]);
  const store = await Store.connect(await labNatsUrl());
  try {
    const [doc] = await parsePolicyFile('test/e2e/fixtures/x-default-deny.yaml');
    const roundTrip: number[] = [];
    const apply: number[] = [];
    const relabel: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      let t = performance.now();
      await store.put('namespaces', 'bench-probe', { v: 1, name: 'bench-probe', labels: { i: String(i) } });
      await store.get('pods', 'x/a', podRecord);
      roundTrip.push(performance.now() - t);

      // A policy change: put (or delete) the document, wait for its revision everywhere.
      const key = policyKey(doc!.kind, doc!.namespace, doc!.name);
      t = performance.now();
      const rev = i % 2 === 0
        ? await store.put('policies', key, { v: 1, kind: doc!.kind, apiVersion: doc!.apiVersion, namespace: doc!.namespace, name: doc!.name, spec: doc, source: doc!.source })
        : await store.delete('policies', key);
      apply.push(await until(store, t, (s) => (s.revisions.policies ?? 0) >= rev));

      // A relabel: y/e alternates between app=db and app=client.
      const pod = (await store.get('pods', 'y/e', podRecord))!.value;
      const before = (await store.get('endpoints', 'y/e', endpointRecord))!.value.identity;
      t = performance.now();
      await store.put('pods', 'y/e', { ...pod, labels: { ...pod.labels, app: i % 2 === 0 ? 'client' : 'db' } });
      // Wait for the new identity to be published, then for every node to enforce that revision.
      let epRev = 0;
      let idRev = 0;
      for (let k = 0; k < 20_000 && !epRev; k++) {
        const e = await store.get('endpoints', 'y/e', endpointRecord);
        if (e && e.value.identity !== before) {
          epRev = e.revision;
          idRev = (await store.get('identities', `id/${e.value.identity}`, identityRecord))?.revision ?? 0;
        } else await new Promise((r) => setTimeout(r, 2));
      }
      relabel.push(await until(store, t, (s) => (s.revisions.endpoints ?? 0) >= epRev && (s.revisions.identities ?? 0) >= idRev));
    }
    await store.delete('namespaces', 'bench-probe');
    const result = {
      machine: m,
      rounds: ROUNDS,
      storeRoundTripMs: median(roundTrip),
      applyToAllNodesMs: median(apply),
      relabelToAllNodesMs: median(relabel),
      samples: { roundTrip, apply, relabel },
    };
    console.log(`store round trip (baseline): ${result.storeRoundTripMs.toFixed(1)} ms`);
    console.log(`policy change enforced on all 3 nodes: ${result.applyToAllNodesMs.toFixed(1)} ms (median of ${ROUNDS})`);
    console.log(`pod relabel enforced on all 3 nodes: ${result.relabelToAllNodesMs.toFixed(1)} ms (median of ${ROUNDS})`);
    console.log(`written: ${saveResult('propagation', result)}`);
  } finally {
    await store.close();
    tcplane(['lab', 'down']);
  }
}

main().catch((err) => {
  console.error(`bench propagation: ${(err as Error).message}`);
  process.exitCode = 1;
});
