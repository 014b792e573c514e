/**
 * New TCP connections per second through a ClusterIP (connect, send a byte, read it,
 * close; one client thread), at 1, 1,000 and 10,000 services, each service with the same
 * two backend pods on another node, in labs/bench-services.yaml:
 *
 *   plain      pod → pod, no programs and no rules anywhere (the 1.0 baseline)
 *   iptables   kube-proxy's iptables mode (bench/kube-proxy.ts) in the client's node
 *              namespace (n3), agents off; backend `iptables-legacy` (see below)
 *   nftables   kube-proxy's nftables mode in the client's node namespace (n4), agents off
 *   tcplane    the lab with agents, the N services applied with `tcplane apply -f` of a
 *              generated file; beside it in the same lab, alternating: tcplane pod → pod
 *              (the policy path only), and plain pod → pod again with tcplane's programs
 *              swapped out for an empty one (TcplaneHooks in lab-bench.ts), the baseline
 *              its ratio is taken against; and that plain client taking the two backends
 *              in turn, as the service spreads it (one server process listens in both
 *              backends, so this costs what one pod does; see startServers); and one more
 *              service over backend-1 alone (svc-solo), whose connections do exactly the
 *              plain client's work but for the translation
 * The probed service is the last one generated: the last rule of KUBE-SERVICES (the worst
 * case for iptables; the position does not matter to nftables' map nor tcplane's hash).
 *
 * Client (bench/connrate.c) and the backends' server (one process) are pinned to CPU 1 with taskset:
 * the rate is then the CPU cost of a connection end to end, not the VM's cross-CPU wake-up
 * latency (which halves the rate and doubles the noise). A Node client on plain pod → pod
 * is measured once beside the C one, to show it would cap the rate.
 *
 * plain, iptables and nftables alternate round by round in one lab without agents (one
 * client node each, rules loaded once per scale); tcplane and tcplane pod → pod alternate
 * in one lab with agents, services added scale by scale, with that lab's own plain
 * baseline alternating with them. tcplane's ratio is to the plain of its own lab (this VM
 * drifts by a third between labs minutes apart); the emulations' to the plain of theirs.
 *
 * iptables backend: Debian 12's `iptables` is iptables-nft, whose iptables-restore of the
 * 10,000-service ruleset (110,000 rules) takes minutes here; kube-proxy's iptables mode
 * runs on either backend, and the legacy one loads it in about 2 s, so the emulation uses
 * it (bench/service-add.ts times both backends' restores).
 *
 * After the tcplane rounds of each scale, one more sample with kernel.bpf_stats_enabled
 * says how many ns of each connection tcplane's programs take (summed over every hook).
 *
 * Knobs: TCPLANE_BENCH_ROUNDS (5), TCPLANE_BENCH_SECONDS (2, per sample),
 * TCPLANE_BENCH_SCALES (1,1000,10000). Writes bench/results/connrate-*.json.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PACKAGE_ROOT } from '../src/paths.js';
import { iptablesJumps, iptablesRestore, nftRuleset, type EmulatedService } from './kube-proxy.js';
import { connrateBinary, fmt, inNetns, labDown, NetnsProcess, num, spread, tcplane, TcplaneHooks, type Spread } from './lab-bench.js';
import { netnsPath } from '../src/lab/exec.js';
import { machine, saveResult } from './machine.js';

const LAB = 'labs/bench-services.yaml';
const ROUNDS = num('TCPLANE_BENCH_ROUNDS', 5);
const SECONDS = num('TCPLANE_BENCH_SECONDS', 2);
const SCALES = (process.env.TCPLANE_BENCH_SCALES ?? '1,1000,10000').split(',').map(Number);
const CPU = '1';
const CLUSTER_CIDR = '10.244.0.0/16';
const SERVICE_CIDR = '10.96.0.0/16';
const SERVICE_PORT = 80;
const TARGET_PORT = 9000;
const BACKENDS = [
  { netns: 'tp-pod-bench-backend-1', ip: '10.244.1.10' },
  { netns: 'tp-pod-bench-backend-2', ip: '10.244.1.11' },
];
const CLIENT = { plain: 'tp-pod-bench-client', iptables: 'tp-pod-bench-client-ipt', nftables: 'tp-pod-bench-client-nft' };
const NODE = { iptables: 'tp-node-n3', nftables: 'tp-node-n4' };

interface Sample {
  rate: number;
  errors: number;
}

/** One client run: connections per second. */
function sample(netns: string, ip: string, port: number, node = false): Sample {
  const argv = node
    ? ['taskset', '-c', CPU, process.execPath, join(PACKAGE_ROOT, 'dist', 'bench', 'connrate-node.js'), ip, String(port), String(SECONDS)]
    : ['taskset', '-c', CPU, connrateBinary(), 'client', ip, String(port), String(SECONDS)];
  const out = JSON.parse(inNetns(netns, argv, { timeoutMs: (SECONDS + 30) * 1000 })) as { connections: number; seconds: number; errors: number; firstError?: string };
  if (out.connections === 0) throw new Error(`connrate ${ip}:${port} from ${netns}: no connection (${out.firstError ?? 'errors'})`);
  if (out.errors > 0) console.warn(`  ${netns} → ${ip}:${port}: ${out.errors} errors (${out.firstError})`);
  return { rate: out.connections / out.seconds, errors: out.errors };
}

/** The emulated services: ClusterIP 10.96.0.0/16 + 1 + i, the probed one last. */
function emulated(n: number): EmulatedService[] {
  return Array.from({ length: n }, (_, i) => ({
    namespace: 'bench',
    name: svcName(i),
    portName: 'tcp',
    clusterIP: `10.96.${(i + 1) >> 8}.${(i + 1) & 255}`,
    port: SERVICE_PORT,
    endpoints: BACKENDS.map((b) => ({ ip: b.ip, port: TARGET_PORT })),
  }));
}
const svcName = (i: number) => `svc-${String(i).padStart(5, '0')}`;
/** One more service, over backend-1 alone (labelled `solo` in the lab): a ClusterIP connection doing exactly the plain one's work besides translation. */
const SOLO = 'svc-solo';

/** Prepares every client namespace: ports reused from TIME_WAIT, the whole ephemeral range. */
function tuneClients(): void {
  for (const ns of Object.values(CLIENT)) inNetns(ns, ['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1', 'net.ipv4.ip_local_port_range=1024 65535']);
}

/**
 * One server process for both backends: started in backend-1's namespace, it listens in
 * backend-2's too (connrate.c's ADDR@NETNS). Two processes sharing CPU 1 would add an
 * address-space switch per connection when the service spreads over them (7-11% of the
 * rate by itself, measured here when each backend had its own process), which backends
 * on CPUs of their own do not pay; with one process, "both backends in turn" costs what
 * one pod does, and the service is measured against plain pod → pod for what it adds.
 */
async function startServers(): Promise<NetnsProcess[]> {
  const [first, ...rest] = BACKENDS;
  const listen = [first!.ip, ...rest.map((b) => `${b.ip}@${netnsPath(b.netns)}`)].join(',');
  return [await NetnsProcess.start(first!.netns, ['taskset', '-c', CPU, connrateBinary(), 'server', listen, String(TARGET_PORT)])];
}

/** Rounds of alternating setups: every setup once per round, in the same order. */
function alternate(setups: Record<string, () => Sample>, rounds: number): Record<string, Spread & { errors: number }> {
  const rates: Record<string, number[]> = {};
  const errors: Record<string, number> = {};
  for (const name of Object.keys(setups)) setups[name]!(); // warm-up: ARP, caches, conntrack
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(setups)) {
      const s = run();
      (rates[name] ??= []).push(s.rate);
      errors[name] = (errors[name] ?? 0) + s.errors;
    }
  }
  return Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, { ...spread(v), errors: errors[k]! }]));
}

/** plain, iptables and nftables at one scale, in a lab without agents. */
async function emulations(n: number, withNodeClient: boolean): Promise<{ results: Record<string, Spread & { errors: number }>; loadMs: Record<string, number> }> {
  labDown();
  tcplane(['lab', 'up', '-f', LAB, '--no-agents']);
  let servers: NetnsProcess[] = [];
  try {
    tuneClients();
    const svcs = emulated(n);
    const probed = svcs[svcs.length - 1]!;
    const loadMs: Record<string, number> = {};
    for (const args of iptablesJumps()) inNetns(NODE.iptables, ['iptables-legacy', '-w', ...args]);
    let t = performance.now();
    inNetns(NODE.iptables, ['iptables-legacy-restore', '-w', '--noflush'], { input: iptablesRestore(svcs, CLUSTER_CIDR), timeoutMs: 600_000 });
    loadMs.iptables = performance.now() - t;
    t = performance.now();
    inNetns(NODE.nftables, ['nft', '-f', '-'], { input: nftRuleset(svcs, CLUSTER_CIDR, SERVICE_CIDR), timeoutMs: 600_000 });
    loadMs.nftables = performance.now() - t;
    console.log(`${n} services: iptables-legacy-restore ${loadMs.iptables.toFixed(0)} ms, nft -f ${loadMs.nftables.toFixed(0)} ms (setup, not measured)`);
    servers = await startServers();
    const setups: Record<string, () => Sample> = {
      plain: () => sample(CLIENT.plain, BACKENDS[0]!.ip, TARGET_PORT),
      iptables: () => sample(CLIENT.iptables, probed.clusterIP, SERVICE_PORT),
      nftables: () => sample(CLIENT.nftables, probed.clusterIP, SERVICE_PORT),
    };
    if (withNodeClient) setups['plain, Node client'] = () => sample(CLIENT.plain, BACKENDS[0]!.ip, TARGET_PORT, true);
    return { results: alternate(setups, ROUNDS), loadMs };
  } finally {
    for (const s of servers) s.stop();
    labDown();
  }
}

/** The generated manifest of services 0 … n-1 and SOLO (re-applying the first ones changes nothing). */
function manifest(dir: string, n: number): string {
  const file = join(dir, `services-${n}.yaml`);
  const docs = Array.from({ length: n }, (_, i) =>
    stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: svcName(i), namespace: 'bench' },
      spec: { selector: { app: 'conn-backend' }, ports: [{ name: 'tcp', port: SERVICE_PORT, targetPort: TARGET_PORT }] },
    }),
  );
  docs.push(stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: SOLO, namespace: 'bench' }, spec: { selector: { app: 'conn-backend', solo: 'yes' }, ports: [{ name: 'tcp', port: SERVICE_PORT, targetPort: TARGET_PORT }] } }));
  writeFileSync(file, docs.join('---\n'));
  return file;
}

/** tcplane at every scale, in one lab with agents; services are added scale by scale. */
/**
 * Where a connection's time goes in tcplane's programs: one more sample with the kernel's
 * BPF run-time statistics on (kernel.bpf_stats_enabled, off again after), summed over
 * every tp_* program of every node, per connection made.
 */
function programCost(run: () => Sample): { nsPerConnection: number; runsPerConnection: number; perProgram: Record<string, { ns: number; runs: number }> } {
  const read = () => {
    const progs = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as { name?: string; run_time_ns?: number; run_cnt?: number }[];
    const by: Record<string, { ns: number; runs: number }> = {};
    for (const p of progs) {
      if (!p.name?.startsWith('tp_')) continue;
      const e = (by[p.name] ??= { ns: 0, runs: 0 });
      e.ns += p.run_time_ns ?? 0;
      e.runs += p.run_cnt ?? 0;
    }
    return by;
  };
  writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
  try {
    const before = read();
    const s = run();
    const after = read();
    const conns = s.rate * SECONDS;
    const perProgram = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, { ns: (v.ns - (before[k]?.ns ?? 0)) / conns, runs: (v.runs - (before[k]?.runs ?? 0)) / conns }]));
    const sum = (f: (x: { ns: number; runs: number }) => number) => Object.values(perProgram).reduce((a, x) => a + f(x), 0);
    return { nsPerConnection: sum((x) => x.ns), runsPerConnection: sum((x) => x.runs), perProgram };
  } finally {
    writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '0');
  }
}

async function withTcplane(scales: number[]): Promise<Record<number, { results: Record<string, Spread & { errors: number }>; applyMs: number; inPrograms: ReturnType<typeof programCost> }>> {
  labDown();
  tcplane(['lab', 'up', '-f', LAB]);
  const dir = mkdtempSync(join(tmpdir(), 'tcplane-bench-'));
  let servers: NetnsProcess[] = [];
  let hooks: TcplaneHooks | undefined;
  const out: Record<number, { results: Record<string, Spread & { errors: number }>; applyMs: number; inPrograms: ReturnType<typeof programCost> }> = {};
  try {
    tuneClients();
    servers = await startServers();
    hooks = new TcplaneHooks();
    console.log(`plain in this lab: ${hooks.count} tcx links swapped to an empty program for its rounds`);
    for (const n of scales) {
      const file = manifest(dir, n);
      const t = performance.now();
      tcplane(['apply', '-f', file, '--wait', '--timeout', '900s'], { capture: true, timeoutMs: 1_000_000 });
      const applyMs = performance.now() - t;
      const all = JSON.parse(tcplane(['get', 'services', '-o', 'json'], { capture: true })) as { namespace: string; name: string; clusterIPs: string[]; backends: unknown[] }[];
      const probed = all.find((s) => s.namespace === 'bench' && s.name === svcName(n - 1));
      if (!probed || probed.backends.length !== BACKENDS.length) throw new Error(`bench connrate: ${svcName(n - 1)} missing or without its backends`);
      const solo = all.find((s) => s.namespace === 'bench' && s.name === SOLO);
      if (!solo || solo.backends.length !== 1) throw new Error(`bench connrate: ${SOLO} missing or not on backend-1 alone`);
      console.log(`${n} services: tcplane apply -f --wait ${(applyMs / 1000).toFixed(1)} s (setup, not measured); probing ${probed.clusterIPs[0]}`);
      const off = hooks;
      const results = alternate(
        {
          'plain, tcplane lab': () => off.without(() => sample(CLIENT.plain, BACKENDS[0]!.ip, TARGET_PORT)),
          'plain, tcplane lab, both backends': () => off.without(() => sample(CLIENT.plain, BACKENDS.map((b) => b.ip).join(','), TARGET_PORT)),
          tcplane: () => sample(CLIENT.plain, probed.clusterIPs[0]!, SERVICE_PORT),
          'tcplane, one backend': () => sample(CLIENT.plain, solo.clusterIPs[0]!, SERVICE_PORT),
          'tcplane pod → pod': () => sample(CLIENT.plain, BACKENDS[0]!.ip, TARGET_PORT),
        },
        ROUNDS,
      );
      const inPrograms = programCost(() => sample(CLIENT.plain, probed.clusterIPs[0]!, SERVICE_PORT));
      console.log(`  tcplane programs (kernel.bpf_stats_enabled, one extra sample): ${inPrograms.nsPerConnection.toFixed(0)} ns per connection, ${inPrograms.runsPerConnection.toFixed(1)} program runs`);
      out[n] = { results, applyMs, inPrograms };
    }
    return out;
  } finally {
    hooks?.close();
    for (const s of servers) s.stop();
    labDown();
  }
}

async function main(): Promise<void> {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  console.log(`connections per second, one client thread on CPU ${CPU}, ${ROUNDS} rounds × ${SECONDS} s per setup, alternating\n`);
  connrateBinary();
  const emu: Record<number, Awaited<ReturnType<typeof emulations>>> = {};
  for (const [i, n] of SCALES.entries()) emu[n] = await emulations(n, i === 0);
  const tp = await withTcplane(SCALES);

  const rows = SCALES.map((n) => {
    const r = { ...emu[n]!.results, ...tp[n]!.results };
    // Each setup against the plain of its own lab.
    const plainOf = (k: string) => (k in tp[n]!.results ? tp[n]!.results['plain, tcplane lab']! : emu[n]!.results.plain!);
    return {
      services: n,
      setups: r,
      ratioToPlain: Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.median / plainOf(k).median])),
      // Sample i against the plain sample of the same round: a drift of the VM between
      // rounds moves both (the setups alternate within each round).
      pairedRatioToPlain: Object.fromEntries(Object.entries(r).map(([k, v]) => [k, spread(v.samples.map((x, i) => x / plainOf(k).samples[i]!))])),
      // The two-backend service against the plain client that spreads over the same two backends.
      tcplaneToBothBackends: tp[n]!.results.tcplane!.median / tp[n]!.results['plain, tcplane lab, both backends']!.median,
      loadMs: emu[n]!.loadMs,
      tcplaneApplyMs: tp[n]!.applyMs,
      tcplanePrograms: tp[n]!.inPrograms,
    };
  });
  console.log('\nservices  setup                 conn/s median (min, max)          ratio to the plain of its lab   per round: median (min, max)');
  for (const row of rows) {
    for (const [k, v] of Object.entries(row.setups)) {
      console.log(`${String(row.services).padStart(8)}  ${k.padEnd(20)}  ${fmt(v).padEnd(32)}  ${row.ratioToPlain[k]!.toFixed(2).padEnd(30)}  ${fmt(row.pairedRatioToPlain[k]!, 2)}`);
    }
  }
  const file = saveResult('connrate', {
    machine: m,
    rounds: ROUNDS,
    secondsPerSample: SECONDS,
    cpu: CPU,
    probed: 'the last service generated',
    backends: BACKENDS.map((b) => b.ip),
    iptablesBackend: 'iptables-legacy',
    ratios: 'each setup to the plain of its own lab: the emulations to "plain", the tcplane setups to "plain, tcplane lab"; ratioToPlain is of the medians, pairedRatioToPlain the spread of each round\'s sample over the same round\'s plain one',
    scales: rows,
  });
  for (const row of rows) console.log(`${row.services} services: tcplane (two backends) / plain both backends in turn ${row.tcplaneToBothBackends.toFixed(2)}`);
  console.log(`\nwritten: ${file}`);
}

main().catch((err) => {
  console.error(`bench connrate: ${(err as Error).message}`);
  labDown();
  process.exitCode = 1;
});
