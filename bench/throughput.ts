/**
 * Throughput through the datapath with iperf3, against plain routing in the same run.
 *
 *   baseline   lab up --no-agents: veths and routes only, no BPF program anywhere
 *   tcplane    lab up with agents, the server isolated by a NetworkPolicy admitting the
 *              client on TCP 5201: every packet crosses tp_from_pod on the client's veth
 *              and tp_to_pod on the server's (conntrack hit after the first)
 *   tcplane, ClusterIP   the same lab, the client reaching the server through the
 *              service bench/server (10.96.0.10:5201): DNAT on every client packet, reverse
 *              NAT on every reply, policy after translation; alternating run by run with
 *              the pod → pod runs above
 * Same lab, same pods, same kernel; one TCP stream and four, cross-node. Prints each and
 * the ratios to the baseline (a lab of its own, just before); writes
 * bench/results/throughput-*.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI_ENTRY, PACKAGE_ROOT } from '../src/paths.js';
import { machine, saveResult } from './machine.js';

const LAB = 'labs/bench.yaml';
const SERVER_IP = '10.244.2.10';
const CLUSTER_IP = '10.96.0.10'; // labs/bench.yaml's service bench/server
const SECONDS = Number(process.env.TCPLANE_BENCH_SECONDS ?? 5);
const REPEATS = Number(process.env.TCPLANE_BENCH_REPEATS ?? 3);

function tcplane(args: string[], capture = false): string {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'],
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`tcplane ${args.join(' ')}: exit ${r.status ?? r.signal}`);
  return r.stdout ?? '';
}

/** One iperf3 run from bench/client to bench/server; returns bits per second received. */
async function iperf(streams: number, target = SERVER_IP): Promise<number> {
  // The server runs in the server pod for exactly one test (-1) and is killed if it lingers.
  const server = spawn(process.execPath, [CLI_ENTRY, 'lab', 'exec', 'bench/server', '--', 'iperf3', '-s', '-1', '-B', SERVER_IP], {
    cwd: PACKAGE_ROOT,
    stdio: 'ignore',
  });
  try {
    await sleep(300);
    const out = tcplane(
      ['lab', 'exec', 'bench/client', '--', 'iperf3', '-c', target, '-t', String(SECONDS), '-P', String(streams), '-J'],
      true,
    );
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
async function measure(targets: Record<string, string>): Promise<Record<string, Measured>> {
  const out: Record<string, Measured> = Object.fromEntries(Object.keys(targets).map((k) => [k, {}]));
  for (const streams of [1, 4]) {
    const runs: Record<string, number[]> = {};
    for (let i = 0; i < REPEATS; i++) {
      for (const [label, ip] of Object.entries(targets)) (runs[label] ??= []).push((await iperf(streams, ip)) / 1e9);
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
  try {
    tcplane(['lab', 'up', '-f', LAB, '--no-agents']);
    baseline = (await measure({ 'baseline (plain routing)': SERVER_IP }))['baseline (plain routing)']!;
  } finally {
    tcplane(['lab', 'down']);
  }
  try {
    tcplane(['lab', 'up', '-f', LAB]);
    tcplane(['apply', '-f', 'bench/policies.yaml', '--wait']);
    const r = await measure({ 'tcplane (policy enforced)': SERVER_IP, 'tcplane, pod → ClusterIP → pod': CLUSTER_IP });
    tcp = r['tcplane (policy enforced)']!;
    viaService = r['tcplane, pod → ClusterIP → pod']!;
  } finally {
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
