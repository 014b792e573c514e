/**
 * What verdict events cost (bpf/lib/events.h, agent/flows.ts):
 *
 * 1. ns per packet in the kernel (BPF_PROG_TEST_RUN, 64-byte TCP frames into a pod),
 *    the same object loaded with events on and off (tp_events_on: off verifies the
 *    reporting away), beside the empty program, alternating round by round:
 *      drop     a SYN a default deny drops: with events on, each one is reported
 *               (no rate limit in this bench), so this is the ring buffer write's cost
 *      pass     a packet of an established connection: never reported, so on and off
 *               should cost the same
 *    Each call repeats one frame TCPLANE_BENCH_REPEAT times (8,000: within the ring
 *    buffer's room, which is drained between calls, so no reservation fails).
 * 2. Events a second the agent's reader keeps up with: the ring buffer filled with that
 *    many drops, then FlowReporter.poll() — read, decode, name, JSON, publish to a
 *    nats-server this bench starts on loopback, with a subscriber counting them — timed
 *    until every event has arrived at the subscriber. The agent polls every 100 ms and
 *    the default 1 MiB ring holds about 10,000 events, so bursts faster than the ring
 *    holds between two polls are lost (and counted); the sustained rate is the reader's.
 *
 * Knobs: TCPLANE_BENCH_ROUNDS (5), TCPLANE_BENCH_REPEAT (8000). Needs root and `make`.
 * Writes bench/results/events-*.json.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { FlowReporter, emptyNames } from '../agent/flows.js';
import { BpfObject } from '../src/bpf/object.js';
import { testRun } from '../src/bpf/testrun.js';
import { ipKey } from '../src/datapath/addr.js';
import { VERDICT_ALLOW, VERDICT_DENY } from '../src/datapath/constants.js';
import { NodeDatapath } from '../src/datapath/node-datapath.js';
import { FLOW_SUBJECT_PREFIX } from '../src/store/flows.js';
import { BENCH_EMPTY_OBJECT, DATAPATH_OBJECT } from '../src/paths.js';
import { eth } from '../test/helpers/packet.js';
import { num, spread, type Spread } from './lab-bench.js';
import { machine, saveResult } from './machine.js';

const ROUNDS = num('TCPLANE_BENCH_ROUNDS', 5);
const REPEAT = num('TCPLANE_BENCH_REPEAT', 8000);
const ISOLATED = '10.244.1.10'; // endpoint 11: ingress default deny
const OPEN = '10.244.1.11'; // endpoint 12: not isolated
const WORLD = '192.0.2.1';

const frame = (dst: string, flags: string) => eth().ipv4({ src: WORLD, dst }).tcp({ sport: 40000, dport: 80, flags }).payload(10).build();

/** The object with two endpoints on ifindex 1 (BPF_PROG_TEST_RUN's loopback) and an established connection into the open one. */
function load(eventsOn: boolean): NodeDatapath {
  const dp = NodeDatapath.open({ objectPath: DATAPATH_OBJECT, rodata: { tp_events_on: eventsOn ? 1 : 0, tp_event_rate_per_s: 0 } });
  const ep = (id: number, ingress: number) => ({ id, identity: 300 + id, ifindex: 1, ingress_default: ingress, egress_default: VERDICT_ALLOW, policy_gen: 0 });
  dp.endpoints.update(ipKey(ISOLATED), ep(11, VERDICT_DENY));
  dp.endpoints.update(ipKey(OPEN), ep(12, VERDICT_ALLOW));
  testRun(dp.obj.program('tp_to_pod'), frame(OPEN, 'S')); // the connection the pass case belongs to
  return dp;
}

function nsPerPacket(): Record<string, Spread> {
  const empty = BpfObject.load(BENCH_EMPTY_OBJECT);
  const on = load(true);
  const off = load(false);
  const ringOn = on.openEvents();
  const drop = frame(ISOLATED, 'S');
  const pass = frame(OPEN, 'A');
  const cases: Record<string, () => number> = {
    'empty program': () => testRun(empty.program('tp_bench_empty'), drop, { repeat: REPEAT }).durationNs,
    'drop, events off': () => testRun(off.obj.program('tp_to_pod'), drop, { repeat: REPEAT }).durationNs,
    'drop, events on (each reported)': () => {
      const ns = testRun(on.obj.program('tp_to_pod'), drop, { repeat: REPEAT }).durationNs;
      ringOn.poll(); // drained: the next call finds room again
      return ns;
    },
    'established pass, events off': () => testRun(off.obj.program('tp_to_pod'), pass, { repeat: REPEAT }).durationNs,
    'established pass, events on': () => testRun(on.obj.program('tp_to_pod'), pass, { repeat: REPEAT }).durationNs,
  };
  const samples: Record<string, number[]> = {};
  try {
    for (const run of Object.values(cases)) run(); // warm-up
    const lostBefore = on.readEventStats().lost;
    for (let r = 0; r < ROUNDS; r++) for (const [name, run] of Object.entries(cases)) (samples[name] ??= []).push(run());
    if (on.readEventStats().lost !== lostBefore) throw new Error('bench events: the ring buffer overflowed: lower TCPLANE_BENCH_REPEAT');
  } finally {
    ringOn.close();
    on.close();
    off.close();
    empty.close();
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, spread(v)]));
}

/** A nats-server on a loopback port of its own, its store in a tp- temp dir. */
async function startNats(): Promise<{ url: string; stop: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'tp-bench-nats-'));
  const port = 42000 + (process.pid % 1000);
  const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-n', 'tp-bench-nats'], { stdio: 'ignore' });
  await sleep(500);
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () => {
      proc.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function readerRate(): Promise<{ eventsPerSecond: Spread; events: number }> {
  const nats = await startNats();
  const dp = load(true);
  const nc = await connect({ servers: nats.url });
  const watcher = await connect({ servers: nats.url });
  let arrived = 0;
  watcher.subscribe(`${FLOW_SUBJECT_PREFIX}.live.>`, { callback: () => void arrived++ });
  await watcher.flush();
  const reporter = new FlowReporter(dp.openEvents(), nc, { node: 'bench', historySize: 8192, pollMs: 100 }, pino({ level: 'silent' }));
  reporter.setNames(emptyNames());
  const rates: number[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      testRun(dp.obj.program('tp_to_pod'), frame(ISOLATED, 'S'), { repeat: REPEAT }); // REPEAT events waiting
      const want = arrived + REPEAT;
      const t = performance.now();
      reporter.poll();
      await nc.flush();
      while (arrived < want) await sleep(1);
      rates.push(REPEAT / ((performance.now() - t) / 1000));
    }
    if (dp.readEventStats().lost !== 0n) throw new Error('bench events: the ring buffer overflowed: lower TCPLANE_BENCH_REPEAT');
  } finally {
    reporter.stop();
    await nc.close();
    await watcher.close();
    dp.close();
    nats.stop();
  }
  return { eventsPerSecond: spread(rates), events: REPEAT };
}

async function main(): Promise<void> {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  const perPacket = nsPerPacket();
  console.log(`\nns per packet (BPF_PROG_TEST_RUN, ${ROUNDS} alternating rounds of ${REPEAT} repetitions; median (min–max))`);
  for (const [k, s] of Object.entries(perPacket)) console.log(`  ${k.padEnd(34)} ${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`);
  const reader = await readerRate();
  const r = reader.eventsPerSecond;
  console.log(`\nagent reader (ring buffer → decode → name → JSON → NATS → a subscriber): ${r.median.toFixed(0)} events/s (${r.min.toFixed(0)}–${r.max.toFixed(0)}), ${ROUNDS} rounds of ${reader.events}`);
  const file = saveResult('events', { machine: m, rounds: ROUNDS, repeat: REPEAT, nsPerPacket: perPacket, reader });
  console.log(`\nwritten: ${file}`);
}

await main();
