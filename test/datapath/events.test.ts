// Verdict events of the shipped datapath (bpf/lib/events.h) on synthesized packets:
// which verdicts are reported, what each event says (the packet, direction, endpoint,
// both identities, reason, deciding rule), the per-endpoint rate limit and what it
// counts, and the sampling of allowed connections. Loads build/tcplane.bpf.o unpinned,
// fills its maps through the agent's compiler, runs frames through BPF_PROG_TEST_RUN and
// reads the ring buffer back through the agent's reader and decoder.
// Needs root (BPF_PROG_TEST_RUN) and `make` first.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RingBuffer } from '../../src/bpf/ringbuf.js';
import { testRun, TC_ACT } from '../../src/bpf/testrun.js';
import { decodeEvent, type DatapathEvent } from '../../src/datapath/events.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import { PROGRAM_NAMES } from '../../src/gen/bpf-names.js';
import { compile, ruleId } from '../../src/policy/compile.js';
import { netpol, TWO_NODE_BASE } from '../helpers/cluster.js';
import { frameOf } from '../helpers/frames.js';
import { desiredInputOf, type ModelCluster, type ModelPacket } from '../helpers/model.js';
import { eth } from '../helpers/packet.js';
import { OBJECT_PATH } from '../helpers/paths.js';

const A = '10.244.1.10'; // x/a, local, isolated for ingress
const C = '10.244.2.12'; // x/c on n2: allowed to x/a on TCP 80
const WORLD = '192.0.2.1';
const SYN = 0x02;
const ACK = 0x10;

const CLUSTER: ModelCluster = {
  ...TWO_NODE_BASE,
  pods: [
    { namespace: 'x', name: 'a', node: 'n1', labels: { app: 'a' }, ips: [A] },
    { namespace: 'x', name: 'c', node: 'n2', labels: { app: 'c' }, ips: [C] },
  ],
  policies: [
    netpol('x', 'allow-c', {
      podSelector: { matchLabels: { app: 'a' }, matchExpressions: [] },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'c' }, matchExpressions: [] } }], ports: [{ protocol: 'TCP', port: 80 }] }],
    }),
  ],
};
const bridge = desiredInputOf(CLUSTER);
const EP_A = bridge.endpointIds.get('x/a')!;
const ID_A = bridge.identities.get('x/a')!;
const ID_C = bridge.identities.get('x/c')!;
const WORLD_IDENTITY = 2;

const tcp = (src: string, dst: string, dport: number, sport: number, tcpFlags = SYN): ModelPacket => ({ src, dst, protocol: 'TCP', sport, dport, tcpFlags });

interface Loaded {
  dp: NodeDatapath;
  events: RingBuffer;
}

function open(rodata: Record<string, number> = {}): Loaded {
  const dp = NodeDatapath.open({ objectPath: OBJECT_PATH, rodata });
  dp.maps.sync(compile(bridge.input));
  return { dp, events: dp.openEvents() };
}
function close(l: Loaded | undefined): void {
  l?.events.close();
  l?.dp.close();
}

/** Runs frames into x/a (its veth's tc egress) and returns the events they caused. */
function toA(l: Loaded, ...packets: ModelPacket[]): { retvals: number[]; events: DatapathEvent[] } {
  l.events.poll(); // whatever an earlier step left
  const retvals = packets.map((p) => testRun(l.dp.obj.program(PROGRAM_NAMES.tp_to_pod), frameOf(p).build()).retval);
  return { retvals, events: l.events.poll().map((r) => decodeEvent(r)!) };
}

describe('events - what is reported', () => {
  let l: Loaded;
  beforeAll(() => {
    l = open();
  });
  afterAll(() => close(l));

  it('events - a default-deny drop: the packet, ingress, both identities, no rule (the default)', () => {
    const { retvals, events } = toA(l, tcp(WORLD, A, 80, 41000));
    expect(retvals).toEqual([TC_ACT.SHOT]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      family: 4,
      protocol: 6,
      src: { ip: WORLD, port: 41000 },
      dst: { ip: A, port: 80 },
      backend: null,
      direction: 'ingress',
      reasonName: 'drop_policy_default',
      verdict: 'dropped',
      endpointId: EP_A,
      identity: ID_A,
      peerIdentity: WORLD_IDENTITY,
      ruleId: 0,
      sampled: false,
      suppressed: 0,
      tcpFlags: SYN,
    });
  });

  it('events - an allowed new connection is sampled with the rule that allowed it; its later packets report nothing', () => {
    const first = toA(l, tcp(C, A, 80, 42000));
    expect(first.retvals).toEqual([TC_ACT.UNSPEC]);
    expect(first.events).toHaveLength(1);
    expect(first.events[0]).toMatchObject({
      verdict: 'forwarded',
      reasonName: 'pass_policy',
      sampled: true,
      peerIdentity: ID_C,
      ruleId: ruleId('NetworkPolicy x/allow-c ingress[0]'),
      src: { ip: C, port: 42000 },
    });
    const later = toA(l, tcp(C, A, 80, 42000, ACK), tcp(C, A, 80, 42000, ACK));
    expect(later.retvals).toEqual([TC_ACT.UNSPEC, TC_ACT.UNSPEC]);
    expect(later.events).toEqual([]);
  });

  it('events - a drop no policy decided is reported too, by the entry program: a truncated packet, a spoofed source', () => {
    l.events.poll();
    const frame = eth().ipv4({ src: WORLD, dst: A }).tcp({ sport: 40000, dport: 80 }).truncate(14 + 20 + 10).build();
    expect(testRun(l.dp.obj.program(PROGRAM_NAMES.tp_to_pod), frame).retval).toBe(TC_ACT.SHOT);
    const spoofed = frameOf(tcp(C, WORLD, 443, 46000)).build(); // sent from x/a's veth with x/c's address
    expect(testRun(l.dp.obj.program(PROGRAM_NAMES.tp_from_pod), spoofed).retval).toBe(TC_ACT.SHOT);
    const events = l.events.poll().map((r) => decodeEvent(r)!);
    expect(events.map((e) => [e.reasonName, e.direction, e.endpointId, e.family, e.src.ip])).toEqual([
      ['drop_truncated', 'ingress', 0, null, null], // the IP header says more than the frame holds: no address read
      ['drop_invalid_source', 'egress', 0, 4, C],
    ]);
  });

  it('events - every event is counted as emitted', () => {
    const before = l.dp.readEventStats();
    toA(l, tcp(WORLD, A, 81, 43000), tcp(WORLD, A, 82, 43001));
    const after = l.dp.readEventStats();
    expect(after.emitted - before.emitted).toBe(2n);
    expect(after.lost).toBe(0n);
  });
});

describe('events - audit mode', () => {
  // allow-c audited: what its isolation would drop passes as audit; what it allows passes
  // as the enforced reading gives it (nothing enforced isolates x/a: the default).
  const audited = (policies: ModelCluster['policies']) => {
    const dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
    dp.maps.sync(compile(desiredInputOf({ ...CLUSTER, policies }).input));
    return { dp, events: dp.openEvents() };
  };
  let l: Loaded | undefined;
  afterAll(() => close(l));

  it("events - an audited policy's default deny passes, counted and reported as audit with the isolating policy", () => {
    l = audited([{ ...CLUSTER.policies[0]!, audit: true }]);
    const { retvals, events } = toA(l, tcp(WORLD, A, 80, 47000), tcp(C, A, 80, 47001));
    expect(retvals).toEqual([TC_ACT.UNSPEC, TC_ACT.UNSPEC]);
    expect(events.map((e) => [e.verdict, e.reasonName, e.ruleId, e.sampled])).toEqual([
      ['audit', 'audit_policy_default', 0, false], // what allow-c's isolation would have dropped
      ['forwarded', 'pass_default', 0, true],
    ]);
    // Passed: its later packets are the connection's (no more events).
    expect(toA(l, tcp(WORLD, A, 80, 47000, ACK)).events).toEqual([]);
  });

  it('events - an audited policy never allows what an enforced one denies', () => {
    close(l);
    l = audited([CLUSTER.policies[0]!, netpol('x', 'all-in', { podSelector: { matchLabels: {}, matchExpressions: [] }, ingress: [{}], audit: true })]);
    const { retvals, events } = toA(l, tcp(WORLD, A, 80, 48000));
    expect(retvals).toEqual([TC_ACT.SHOT]);
    expect(events.map((e) => [e.verdict, e.reasonName])).toEqual([['dropped', 'drop_policy_default']]);
  });
});

describe('events - rate limit and sampling', () => {
  let l: Loaded;
  beforeAll(() => {
    l = open({ tp_event_rate_per_s: 2, tp_event_sample_allowed: 0 });
  });
  afterAll(() => close(l));

  it('events - past the per-endpoint budget events are held back and counted, and the next event carries the count', async () => {
    const before = l.dp.readEventStats();
    // Sent within one second (the budget's window): two go out, three are held back.
    const burst = toA(l, ...[0, 1, 2, 3, 4].map((i) => tcp(WORLD, A, 80, 44000 + i)));
    expect(burst.retvals).toEqual(Array(5).fill(TC_ACT.SHOT)); // the limit holds back reports, never verdicts
    expect(burst.events.map((e) => e.src.port)).toEqual([44000, 44001]);
    expect(l.dp.readEventStats().suppressed - before.suppressed).toBe(3n);
    await sleep(1100); // the next window
    const next = toA(l, tcp(WORLD, A, 80, 44010));
    expect(next.events.map((e) => [e.src.port, e.suppressed])).toEqual([[44010, 3]]);
  });

  it('events - with sampling off an allowed connection reports nothing, a drop still does', () => {
    const { retvals, events } = toA(l, tcp(C, A, 80, 45000));
    expect(retvals).toEqual([TC_ACT.UNSPEC]);
    expect(events).toEqual([]);
  });
});
