/**
 * Throughput through the datapath with iperf3, against plain routing in the same lab.
 *
 *   baseline   plain routing: tcplane's programs swapped for an empty one on every hook
 *              for these runs (TcplaneHooks in lab-bench.ts), agents and links untouched
 *   tcplane    lab up with agents, the server isolated by a NetworkPolicy admitting the
 *              client on TCP 5201: every packet crosses tp_from_pod on the client's veth
 *              and tp_to_pod on the server's (conntrack hit after the first)
 *   tcplane, ClusterIP   the same lab, the client reaching the server through the
 *              service bench/server (10.96.0.10:5201): DNAT on every client packet, reverse
 *              NAT on every reply, policy after translation
 * The three alternate run by run in one lab: same pods, same kernel (across two labs this
 * VM drifts by more than the costs measured). One TCP stream and four, cross-node. Prints
 * each and the ratios to the baseline; writes bench/results/throughput-*.json.
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_ENTRY, PACKAGE_ROOT } from '../src/paths.js';
import { tcplane, TcplaneHooks } from './lab-bench.js';
import { machine, saveResult } from './machine.js';

const LAB = 'labs/bench.yaml';
const SERVER_IP = '10.244.2.10';
const CLUSTER_IP = '10.96.0.10'; // labs/bench.yaml's service bench/server
const SECONDS = Number(process.env.TCPLANE_BENCH_SECONDS ?? 5);
const REPEATS = Number(process.env.TCPLANE_BENCH_REPEATS ?? 3);

/** One iperf3 run from bench/client to bench/server; returns bits per second received. */
async function iperf(streams: number, target = SERVER_IP): Promise<number> {
  // The server runs in the server pod for exactly one test (-1) and is killed if it lingers.
  const server = spawn(process.execPath, [CLI_ENTRY, 'lab', 'exec', 'bench/server', '--', 'iperf3', '-s', '-1', '-B', SERVER_IP], {
    cwd: PACKAGE_ROOT,
    stdio: 'ignore',
  });
  try {
    await sleep(300);
    const out = tcplane(['lab', 'exec', 'bench/client', '--', 'iperf3', '-c', target, '-t', String(SECONDS), '-P', String(streams), '-J'], {
      capture: true,
    });
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second;
  } finally {
    if (server.exitCode === null) server.kill('SIGTERM');
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

type Measured = Record<string, { gbps: number; runs: number[] }>;

/** Each target `REPEATS` times per stream count, the targets alternating run by run. */
async function measure(targets: Record<string, (streams: number) => Promise<number>>): Promise<Record<string, Measured>> {
  const out: Record<string, Measured> = Object.fromEntries(Object.keys(targets).map((k) => [k, {}]));
  for (const streams of [1, 4]) {
    const runs: Record<string, number[]> = {};
    for (let i = 0; i < REPEATS; i++) {
      for (const [label, run] of Object.entries(targets)) (runs[label] ??= []).push((await run(streams)) / 1e9);
    }
    for (const [label, r] of Object.entries(runs)) {
      out[label]![`${streams}-stream`] = { gbps: median(r), runs: r };
      console.log(`${label}: ${streams} stream(s): ${median(r).toFixed(2)} Gbit/s (median of ${r.map((x) => x.toFixed(2)).join(', ')})`);
    }
  }
  return out;
}

async function main(): Promise<void> {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  let baseline: Measured;
  let tcp: Measured;
  let viaService: Measured;
  let hooks: TcplaneHooks | undefined;
  try {
    tcplane(['lab', 'up', '-f', LAB]);
    tcplane(['apply', '-f', 'bench/policies.yaml', '--wait']);
    const off = (hooks = new TcplaneHooks());
    const plain = async (streams: number) => {
      off.off();
      try {
        return await iperf(streams);
      } finally {
        off.on();
      }
    };
    const r = await measure({
      'baseline (plain routing)': plain,
      'tcplane (policy enforced)': (n) => iperf(n),
      'tcplane, pod → ClusterIP → pod': (n) => iperf(n, CLUSTER_IP),
    });
    baseline = r['baseline (plain routing)']!;
    tcp = r['tcplane (policy enforced)']!;
    viaService = r['tcplane, pod → ClusterIP → pod']!;
  } finally {
    hooks?.close();
    tcplane(['lab', 'down']);
  }
  const ratio = (x: Measured) => Object.fromEntries(Object.keys(baseline).map((k) => [k, x[k]!.gbps / baseline[k]!.gbps]));
  const ratios = ratio(tcp);
  const serviceRatios = ratio(viaService);
  for (const [k, r] of Object.entries(ratios)) console.log(`ratio tcplane/baseline, ${k}: ${r.toFixed(3)}; via ClusterIP: ${serviceRatios[k]!.toFixed(3)}`);
  const file = saveResult('throughput', { machine: m, seconds: SECONDS, repeats: REPEATS, baseline, tcplane: tcp, tcplaneClusterIP: viaService, ratios, serviceRatios });
  console.log(`written: ${file}`);
}

main().catch((err) => {
  console.error(`bench throughput: ${(err as Error).message}`);
  process.exitCode = 1;
});
