/**
 * Per-packet cost of the service datapath, measured in the kernel with BPF_PROG_TEST_RUN
 * (64-byte TCP frames from a client pod), with 1 and with 10,000 ClusterIP services (two
 * backends each) programmed through the agent's own compiler (compileServices) and map
 * writer (dp.services.sync), beside, in the same alternating rounds:
 *
 *   empty program         build/bench_empty.bpf.o
 *   policy, established   tp_from_pod, a packet of a known non-service connection:
 *                         today's policy-only path (one conntrack lookup)
 *   service, new flow     tp_from_pod, a SYN to the ClusterIP: frontend lookup, Maglev
 *                         slot, backend, policy, two conntrack inserts, DNAT
 *   service, established  tp_from_pod, a client packet of a known service connection:
 *                         conntrack, the backend-still-serves check, DNAT
 *   service, reply        tp_to_pod, the backend's reply: conntrack, reverse NAT
 *
 * A rewritten packet cannot be repeated in the kernel (BPF_PROG_TEST_RUN runs every
 * repetition on the same buffer, which the first already translated), and a new flow
 * needs a fresh tuple each time, so the service cases run one repetition per call,
 * each paired with a policy-established packet timed the same way; the pair's difference
 * plus the policy case's repeated cost is the case's cost (the single-call timing overhead
 * cancels). Writes bench/results/services-datapath-*.json.
 */
import { BpfObject } from '../src/bpf/object.js';
import { testRun } from '../src/bpf/testrun.js';
import { ipKey } from '../src/datapath/addr.js';
import { VERDICT_ALLOW } from '../src/datapath/constants.js';
import { NodeDatapath } from '../src/datapath/node-datapath.js';
import { BENCH_EMPTY_OBJECT, DATAPATH_OBJECT } from '../src/paths.js';
import { BackendIds } from '../src/services/backend-ids.js';
import { compileServices } from '../src/services/compile.js';
import type { Service } from '../src/services/types.js';
import type { PodRecord } from '../src/store/schema.js';
import { eth } from '../test/helpers/packet.js';
import { num, spread, type Spread } from './lab-bench.js';
import { machine, saveResult } from './machine.js';
import { benchClusterIP, benchService } from './service-records.js';

const REPEAT = num('TCPLANE_BENCH_REPEAT', 200_000);
const ROUNDS = num('TCPLANE_BENCH_ROUNDS', 5);
const PAIRS = num('TCPLANE_BENCH_PAIRS', 2000);
const SCALES = [1, 10_000];
const CLIENT = '10.244.1.10';
const EP = 11;
const BACKENDS = ['10.244.2.10', '10.244.2.11'];
const TARGET_PORT = 9000;
const SEED = 0x7470;

const frame = (src: string, dst: string, sport: number, dport: number, flags = 'A') =>
  eth().ipv4({ src, dst }).tcp({ sport, dport, flags }).payload(10).build();

const clusterIP = benchClusterIP;
const service = (i: number): Service => benchService(i, TARGET_PORT, 'bench/services-datapath.ts');

const pods: PodRecord[] = BACKENDS.map((ip, i) => ({
  v: 1,
  namespace: 'bench',
  name: `backend-${i + 1}`,
  node: 'n2',
  labels: { app: 'backend' },
  ips: [ip],
  ifname: `tp-b${i}`,
  ports: [],
  ready: true,
}));

/** A client node's datapath with `n` services programmed as the agent would. */
function open(n: number): { dp: NodeDatapath; probed: string } {
  const dp = NodeDatapath.open({ objectPath: DATAPATH_OBJECT });
  dp.endpoints.update(ipKey(CLIENT), { id: EP, identity: 300, ifindex: 1, ingress_default: VERDICT_ALLOW, egress_default: VERDICT_ALLOW, policy_gen: 0 });
  for (const b of BACKENDS) dp.ipcache.update(ipKey(b), { identity: 400 });
  dp.setLbSeed(SEED);
  const t = performance.now();
  const desired = compileServices({
    node: 'n1',
    services: Array.from({ length: n }, (_, i) => service(i)),
    pods,
    seed: SEED,
    maxTableSize: 16381,
    backendIds: new BackendIds([], dp.backends.raw.info.maxEntries),
    currentTableSize: (id) => dp.services.luts.table(id)?.length,
  });
  const r = dp.services.sync(desired);
  console.log(`${n} services programmed in ${(performance.now() - t).toFixed(0)} ms: writes ${JSON.stringify(r.writes)}`);
  return { dp, probed: clusterIP(n - 1) };
}

interface Bench {
  label: string;
  cases: Record<string, () => number>;
}

function cases(n: number): Bench & { close: () => void } {
  const { dp, probed } = open(n);
  const from = dp.obj.program('tp_from_pod');
  const to = dp.obj.program('tp_to_pod');
  // The policy path's reference: a connection to a backend directly, established.
  const est = frame(CLIENT, BACKENDS[0]!, 40000, TARGET_PORT);
  testRun(from, frame(CLIENT, BACKENDS[0]!, 40000, TARGET_PORT, 'S'));
  const policyNs = () => testRun(from, est, { repeat: REPEAT }).durationNs;
  // One service connection: its SYN decides the backend (read from the rewritten frame).
  const syn = testRun(from, frame(CLIENT, probed, 41000, 80, 'S'));
  if (syn.retval === 2) throw new Error(`bench services-datapath: the SYN to ${probed} got verdict ${syn.retval}`);
  const backend = [...syn.data.subarray(30, 34)].join('.');
  if (!BACKENDS.includes(backend) || syn.data.readUInt16BE(36) !== TARGET_PORT) throw new Error(`bench services-datapath: SYN not translated (to ${backend})`);
  const svcEst = frame(CLIENT, probed, 41000, 80);
  const svcReply = frame(backend, CLIENT, TARGET_PORT, 41000, 'SA');
  if ([...testRun(to, svcReply).data.subarray(26, 30)].join('.') !== probed) throw new Error('bench services-datapath: reply not reverse-translated');
  let port = 10000;
  /** Single-call timing of make(), less a single-call policy packet's, plus the policy case repeated. */
  const paired = (prog: typeof from, make: () => Buffer) => () => {
    const base = policyNs();
    let diff = 0;
    for (let i = 0; i < PAIRS; i++) diff += testRun(prog, make()).durationNs - testRun(from, est).durationNs;
    return base + diff / PAIRS;
  };
  return {
    label: `${n} service${n === 1 ? '' : 's'}`,
    cases: {
      'policy, established': policyNs,
      'service, new flow': paired(from, () => frame(CLIENT, probed, port++ > 60000 ? (port = 10000) : port, 80, 'S')),
      'service, established': paired(from, () => svcEst),
      'service, reply': paired(to, () => svcReply),
    },
    close: () => dp.close(),
  };
}

function main(): void {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  const empty = BpfObject.load(BENCH_EMPTY_OBJECT);
  const benches = SCALES.map(cases);
  try {
    const f = frame(CLIENT, BACKENDS[0]!, 40000, TARGET_PORT);
    const runs: [string, () => number][] = [['empty program', () => testRun(empty.program('tp_bench_empty'), f, { repeat: REPEAT }).durationNs]];
    for (const b of benches) for (const [k, run] of Object.entries(b.cases)) runs.push([`${k} | ${b.label}`, run]);
    const samples: Record<string, number[]> = {};
    for (let r = 0; r < ROUNDS; r++) for (const [k, run] of runs) (samples[k] ??= []).push(run());
    const results: Record<string, Spread> = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, spread(v)]));
    const base = results['empty program']!.median;
    console.log(`\nns per 64-byte packet (BPF_PROG_TEST_RUN), ${ROUNDS} alternating rounds; median (min–max), over the empty program\n`);
    for (const [k, s] of Object.entries(results)) {
      console.log(`${k.padEnd(36)} ${s.median.toFixed(0).padStart(5)} ns (${s.min.toFixed(0)}–${s.max.toFixed(0)})   +${(s.median - base).toFixed(0)} ns`);
    }
    const file = saveResult('services-datapath', { machine: m, repeat: REPEAT, rounds: ROUNDS, pairs: PAIRS, backendsPerService: BACKENDS.length, results });
    console.log(`\nwritten: ${file}`);
  } finally {
    for (const b of benches) b.close();
    empty.close();
  }
}

main();
