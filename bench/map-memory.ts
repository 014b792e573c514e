/**
 * Map memory at 10,000 services × 10 backends: the kernel's own accounting (memlock in
 * /proc/self/fdinfo, what `bpftool map show` reports as bytes_memlock) of every map of a
 * node's datapath — each map of the object, and every inner Maglev table, found through
 * tp_lut_v1's values — after programming the services through the agent's compiler and
 * map writer, beside what one fixed 16381-slot table per service would take (the
 * DESIGN's 655 MB; measured on one such table, times the table count).
 *
 * Run without the lab: a NodeDatapath opened directly, as the agent opens it with
 * `--lb-max-backends 131072` (100,000 backends do not fit the default 65,536), maps
 * filled by compileServices + dp.services.sync. The lab would add nothing but four agents
 * doing the same, and lab agents take no extra arguments yet. The accounting is
 * deterministic, so one measurement (its inputs recorded) stands for itself.
 *
 * Knobs: TCPLANE_BENCH_SERVICES (10000), TCPLANE_BENCH_BACKENDS (10).
 * Writes bench/results/map-memory-*.json.
 */
import { readFileSync } from 'node:fs';
import { BpfMap, MAP_TYPE, MapOfMaps } from '../src/bpf/map.js';
import { BPF_F_INNER_MAP } from '../src/bpf/libbpf.js';
import { NodeDatapath } from '../src/datapath/node-datapath.js';
import { MAP_NAMES } from '../src/gen/bpf-names.js';
import { DATAPATH_OBJECT } from '../src/paths.js';
import { BackendIds } from '../src/services/backend-ids.js';
import { compileServices } from '../src/services/compile.js';
import { MAGLEV_DEFAULT_MAX_SIZE } from '../src/services/maglev.js';
import type { Service } from '../src/services/types.js';
import type { PodRecord } from '../src/store/schema.js';
import { num } from './lab-bench.js';
import { benchService } from './service-records.js';
import { machine, saveResult } from './machine.js';

const N = num('TCPLANE_BENCH_SERVICES', 10_000);
const B = num('TCPLANE_BENCH_BACKENDS', 10);
const MAX_BACKENDS = 131_072;

/** memlock and map id of an open map, from /proc/self/fdinfo. */
function fdinfo(fd: number): { memlock: number; id: number } {
  const text = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { memlock: field('memlock'), id: field('map_id') };
}

const service = (i: number): Service => benchService(i, 9000, 'bench/map-memory.ts');

const pods: PodRecord[] = Array.from({ length: B }, (_, i) => ({
  v: 1,
  namespace: 'bench',
  name: `backend-${i}`,
  node: `n${1 + (i % 3)}`,
  labels: { app: 'backend' },
  ips: [`10.244.${1 + (i % 3)}.${10 + i}`],
  ifname: `tp-b${i}`,
  ports: [],
  ready: true,
}));

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function main(): void {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  const dp = NodeDatapath.open({ objectPath: DATAPATH_OBJECT, maxEntries: { [MAP_NAMES.tp_backends_v1]: MAX_BACKENDS } });
  try {
    const empty: Record<string, number> = {};
    for (const name of Object.values(MAP_NAMES)) empty[name] = fdinfo(dp.obj.map(name).fd).memlock;
    let t = performance.now();
    const desired = compileServices({
      node: 'n1',
      services: Array.from({ length: N }, (_, i) => service(i)),
      pods,
      seed: 1,
      maxTableSize: MAGLEV_DEFAULT_MAX_SIZE,
      backendIds: new BackendIds([], MAX_BACKENDS),
      currentTableSize: (id) => dp.services.luts.table(id)?.length,
    });
    const compileMs = performance.now() - t;
    t = performance.now();
    const writes = dp.services.sync(desired).writes;
    const syncMs = performance.now() - t;
    console.log(`${N} services × ${B} backends: compiled in ${compileMs.toFixed(0)} ms, written in ${syncMs.toFixed(0)} ms: ${JSON.stringify(writes)}`);

    const outer: Record<string, number> = {};
    for (const name of Object.values(MAP_NAMES)) outer[name] = fdinfo(dp.obj.map(name).fd).memlock;
    // Inner tables: opened through their ids (tp_lut_v1's values), each with its own accounting.
    const luts = new MapOfMaps(dp.obj.map(MAP_NAMES.tp_lut_v1));
    const slots = new Map<number, number>(); // table size → tables
    let inner = 0;
    for (const id of dp.services.luts.ids()) {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(id);
      const t = luts.inner(k);
      if (!t) throw new Error(`bench map-memory: no inner table at lut id ${id}`);
      try {
        inner += fdinfo(t.fd).memlock;
        slots.set(t.info.maxEntries, (slots.get(t.info.maxEntries) ?? 0) + 1);
      } finally {
        t.close();
      }
    }
    const tables = dp.services.luts.size;
    // The fixed alternative: one 16381-slot table, as the agent creates them, times the table count.
    const fixed = BpfMap.create(MAP_TYPE.ARRAY, 'tp_lut_inner', 4, 4, MAGLEV_DEFAULT_MAX_SIZE, BPF_F_INNER_MAP);
    const fixedOne = fdinfo(fixed.fd).memlock;
    fixed.close();
    const outerTotal = Object.values(outer).reduce((a, b) => a + b, 0);
    const rows = Object.entries(outer).sort((a, b) => b[1] - a[1]);
    console.log('\nmap                    memlock after   (empty)');
    for (const [k, v] of rows) console.log(`${k.padEnd(22)} ${mib(v).padStart(12)}   (${mib(empty[k]!)})`);
    console.log(`${`${tables} Maglev tables`.padEnd(22)} ${mib(inner).padStart(12)}   sizes ${JSON.stringify(Object.fromEntries(slots))}`);
    console.log(`total                  ${mib(outerTotal + inner).padStart(12)}`);
    console.log(`\nMaglev tables as sized per service: ${mib(inner)}; one fixed ${MAGLEV_DEFAULT_MAX_SIZE}-slot table each: ${tables} × ${fixedOne} B = ${mib(tables * fixedOne)} (ratio ${((tables * fixedOne) / inner).toFixed(1)})`);
    const file = saveResult('map-memory', {
      machine: m,
      services: N,
      backendsPerService: B,
      lbMaxBackends: MAX_BACKENDS,
      compileMs,
      syncMs,
      writes,
      mapsEmptyBytes: empty,
      mapsBytes: outer,
      maglevTables: { count: tables, sizes: Object.fromEntries(slots), bytes: inner },
      totalBytes: outerTotal + inner,
      fixedTableBytes: fixedOne,
      fixedTablesTotalBytes: tables * fixedOne,
    });
    console.log(`written: ${file}`);
  } finally {
    dp.close();
  }
}

main();
