/**
 * Per-packet cost of the datapath, measured in the kernel with BPF_PROG_TEST_RUN
 * (64-byte TCP frames), beside an empty tc program loaded in the same run.
 *
 *   established   tp_to_pod, a packet of a connection conntrack already holds
 *   reply         tp_to_pod, a reply to a connection the pod opened
 *   new, denied   tp_to_pod, isolated pod, no entry for the peer: endpoint, two
 *                 conntrack misses, ipcache, two policy lookups
 *   new, allowed  as above plus the allow entry and the conntrack insert (timed one
 *                 packet at a time, corrected by an established packet timed alike)
 * Each case runs with small maps and again with 10k ipcache entries and 10k policy
 * entries, to show the cost does not grow with the number of policies or peers.
 * TCPLANE_BENCH_OBJECT: another build of the object to measure (an earlier commit, to
 * compare). Writes bench/results/datapath-*.json.
 */
import { BpfObject } from '../src/bpf/object.js';
import { testRun } from '../src/bpf/testrun.js';
import { IDENTITY, PROTO, TP_POLICY_PREFIX, VERDICT_ALLOW, VERDICT_DENY } from '../src/datapath/constants.js';
import { ipKey } from '../src/datapath/addr.js';
import { NodeDatapath } from '../src/datapath/node-datapath.js';
import { BENCH_EMPTY_OBJECT, DATAPATH_OBJECT } from '../src/paths.js';
import { eth } from '../test/helpers/packet.js';
import { machine, saveResult } from './machine.js';

const REPEAT = Number(process.env.TCPLANE_BENCH_REPEAT ?? 200_000);
const ROUNDS = 5;
const POD = '10.244.1.10';
const EP = 11;

const frame = (src: string, dst: string, sport: number, dport: number, flags = 'A') =>
  eth().ipv4({ src, dst }).tcp({ sport, dport, flags }).payload(10).build();

/** Median over rounds of the kernel's mean ns per repetition. */
function nsPerPacket(run: () => number): number {
  const xs = Array.from({ length: ROUNDS }, run).sort((a, b) => a - b);
  return xs[Math.floor(ROUNDS / 2)]!;
}

function setup(dp: NodeDatapath, scale: number): void {
  dp.endpoints.update(ipKey(POD), { id: EP, identity: 300, ifindex: 1, ingress_default: VERDICT_DENY, egress_default: VERDICT_ALLOW, policy_gen: 0 });
  dp.ipcache.update(ipKey('10.244.2.10'), { identity: 400 }); // the allowed peer
  dp.ipcache.update(ipKey('10.244.2.11'), { identity: 401 }); // a peer with no entry
  dp.policy.update(
    { prefixlen: TP_POLICY_PREFIX.TP_POLICY_PREFIX_FULL, endpoint_id: EP, identity: 400, direction: 0, protocol: PROTO.TCP, dport: 80 },
    { verdict: VERDICT_ALLOW, rule_id: 7 },
  );
  // Filler: `scale` more peers and `scale` more policy entries (other endpoints and
  // identities, mixed prefix lengths), as a cluster with many policies would have.
  for (let i = 0; i < scale; i++) {
    dp.ipcache.update(ipKey(`10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`), { identity: 1000 + (i % 5000) });
    dp.policy.update(
      {
        prefixlen: i % 3 === 0 ? TP_POLICY_PREFIX.TP_POLICY_PREFIX_ANY_PORT : TP_POLICY_PREFIX.TP_POLICY_PREFIX_FULL,
        endpoint_id: i % 7 === 0 ? EP : 100 + (i % 100),
        identity: 1000 + (i % 5000),
        direction: i & 1,
        protocol: i % 2 ? PROTO.TCP : PROTO.UDP,
        dport: i % 3 === 0 ? 0 : 1 + (i % 60000),
      },
      { verdict: VERDICT_ALLOW, rule_id: i },
    );
  }
}

interface Case {
  name: string;
  ns: number;
}

function cases(scale: number): Case[] {
  const dp = NodeDatapath.open({ objectPath: process.env.TCPLANE_BENCH_OBJECT ?? DATAPATH_OBJECT });
  try {
    setup(dp, scale);
    const toPod = dp.obj.program('tp_to_pod');
    const fromPod = dp.obj.program('tp_from_pod');
    const out: Case[] = [];

    // Established: the first packet creates the entry, the repetitions hit it.
    const est = frame('10.244.2.10', POD, 40000, 80);
    testRun(toPod, est);
    out.push({ name: 'established', ns: nsPerPacket(() => testRun(toPod, est, { repeat: REPEAT }).durationNs) });

    // Reply: the pod opened a connection outwards (tp_from_pod), the reply comes back.
    testRun(fromPod, frame(POD, '10.244.2.11', 41000, 443, 'S'));
    const reply = frame('10.244.2.11', POD, 443, 41000, 'SA');
    out.push({ name: 'reply', ns: nsPerPacket(() => testRun(toPod, reply, { repeat: REPEAT }).durationNs) });

    // New, denied: nothing is created, so every repetition takes the whole path.
    const denied = frame('10.244.2.11', POD, 42000, 80, 'S');
    if (testRun(toPod, denied).retval !== 2) throw new Error('bench: denied case passed');
    out.push({ name: 'new flow, denied', ns: nsPerPacket(() => testRun(toPod, denied, { repeat: REPEAT }).durationNs) });

    // New, allowed: each packet needs a fresh tuple, so one repetition per call. A single
    // repetition also carries the kernel's timing overhead; an established packet timed
    // the same way in the same loop measures that overhead, which is taken out.
    const established = out[0]!.ns;
    let port = 10000;
    out.push({
      name: 'new flow, allowed',
      ns: nsPerPacket(() => {
        let diff = 0;
        const n = 2000;
        for (let i = 0; i < n; i++) {
          diff += testRun(toPod, frame('10.244.2.10', POD, port++, 80, 'S')).durationNs - testRun(toPod, est).durationNs;
        }
        return established + diff / n;
      }),
    });
    return out;
  } finally {
    dp.close();
  }
}

function main(): void {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  const empty = BpfObject.load(BENCH_EMPTY_OBJECT);
  const f = frame('10.244.2.10', POD, 40000, 80);
  const baseline = nsPerPacket(() => testRun(empty.program('tp_bench_empty'), f, { repeat: REPEAT }).durationNs);
  empty.close();
  const small = cases(0);
  const large = cases(10_000);
  const rows = small.map((s, i) => ({ case: s.name, small: s.ns, large: large[i]!.ns }));
  console.log(`\nns per 64-byte packet (BPF_PROG_TEST_RUN, median of ${ROUNDS} x ${REPEAT}); empty tc program: ${baseline} ns\n`);
  console.log('case                 small maps   10k peers + 10k policy entries   over empty program');
  for (const r of rows) {
    console.log(`${r.case.padEnd(20)} ${`${r.small.toFixed(0)} ns`.padStart(10)}   ${`${r.large.toFixed(0)} ns`.padStart(30)}   ${`+${(r.large - baseline).toFixed(0)} ns`.padStart(18)}`);
  }
  const file = saveResult('datapath', { machine: m, repeat: REPEAT, rounds: ROUNDS, baselineEmptyNs: baseline, cases: rows });
  console.log(`\nwritten: ${file}`);
}

main();
