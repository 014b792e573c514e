// Per-rule packet and byte counters of the shipped datapath (tp_rulecnt_v1): every
// packet of a connection a rule decided counts under that rule — the first, the ones
// after it and the replies — and so does every packet a Deny rule drops; the default
// counts under no rule. The agent's RuleCounters keeps the entries (a new rule at zero,
// a live count never reset) and reads them. Needs root and `make` first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRun, TC_ACT } from '../../src/bpf/testrun.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import { PROGRAM_NAMES } from '../../src/gen/bpf-names.js';
import { compile, ruleId } from '../../src/policy/compile.js';
import { parsePolicyText } from '../../src/policy/parse.js';
import { TWO_NODE_BASE } from '../helpers/cluster.js';
import { frameOf } from '../helpers/frames.js';
import { desiredInputOf, reply, type ModelCluster, type ModelPacket } from '../helpers/model.js';
import { OBJECT_PATH } from '../helpers/paths.js';

const A = '10.244.1.10'; // x/a, local
const C = '10.244.2.12'; // x/c
const D = '10.244.2.13'; // x/d
const WORLD = '192.0.2.1';

const POLICIES = parsePolicyText(
  `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-c, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  ingress: [{from: [{podSelector: {matchLabels: {app: c}}}], ports: [{port: 80}]}]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: no-d}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {}}
  ingress: [{name: deny-d, action: Deny, from: [{pods: {podSelector: {matchLabels: {app: d}}}}]}]
`,
  'test.yaml',
);
const CLUSTER: ModelCluster = {
  ...TWO_NODE_BASE,
  pods: [
    { namespace: 'x', name: 'a', node: 'n1', labels: { app: 'a' }, ips: [A] },
    { namespace: 'x', name: 'c', node: 'n2', labels: { app: 'c' }, ips: [C] },
    { namespace: 'x', name: 'd', node: 'n2', labels: { app: 'd' }, ips: [D] },
  ],
  policies: POLICIES,
};
const ALLOW = ruleId('NetworkPolicy x/a-from-c ingress[0]');
const DENY = ruleId('ClusterNetworkPolicy no-d ingress[0] deny-d');
const tcp = (src: string, dst: string, dport: number, sport: number, tcpFlags: number): ModelPacket => ({ src, dst, protocol: 'TCP', sport, dport, tcpFlags });

let dp: NodeDatapath;
beforeAll(() => {
  dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
  const desired = compile(desiredInputOf(CLUSTER).input);
  dp.ruleCounters.sync(desired.rules.map((r) => r.id));
  dp.maps.sync(desired);
});
afterAll(() => dp?.close());

const run = (hook: 'tp_to_pod' | 'tp_from_pod', p: ModelPacket) => {
  const frame = frameOf(p).build();
  return { retval: testRun(dp.obj.program(PROGRAM_NAMES[hook]), frame).retval, bytes: BigInt(frame.length) };
};

describe('rule counters', () => {
  it('rule counters - the entries are the rules the policy entries use, at zero', () => {
    const counts = dp.ruleCounters.read();
    expect(counts.get(ALLOW)).toEqual({ packets: 0n, bytes: 0n });
    expect(counts.get(DENY)).toEqual({ packets: 0n, bytes: 0n });
  });

  it('rule counters - a connection counts under the rule that allowed it: its first packet, the next, the reply', () => {
    const syn = tcp(C, A, 80, 41000, 0x02);
    const steps = [run('tp_to_pod', syn), run('tp_from_pod', reply(syn)), run('tp_to_pod', tcp(C, A, 80, 41000, 0x10))];
    expect(steps.map((s) => s.retval)).toEqual([TC_ACT.UNSPEC, TC_ACT.UNSPEC, TC_ACT.UNSPEC]);
    expect(dp.ruleCounters.read().get(ALLOW)).toEqual({ packets: 3n, bytes: steps.reduce((a, s) => a + s.bytes, 0n) });
  });

  it('rule counters - every packet a Deny rule drops counts under it; the default counts under none', () => {
    const before = dp.ruleCounters.read();
    const denied = [run('tp_to_pod', tcp(D, A, 80, 42000, 0x02)), run('tp_to_pod', tcp(D, A, 80, 42000, 0x02))];
    expect(denied.map((s) => s.retval)).toEqual([TC_ACT.SHOT, TC_ACT.SHOT]);
    expect(run('tp_to_pod', tcp(WORLD, A, 80, 43000, 0x02)).retval).toBe(TC_ACT.SHOT); // no rule: the default
    const after = dp.ruleCounters.read();
    expect(after.get(DENY)!.packets - before.get(DENY)!.packets).toBe(2n);
    expect(after.get(ALLOW)).toEqual(before.get(ALLOW));
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  });

  it('rule counters - a sync keeps live counts, starts new rules at zero and removes unused ones', () => {
    const before = dp.ruleCounters.read();
    const live = before.get(ALLOW)!;
    expect(dp.ruleCounters.sync([ALLOW, 12345])).toEqual([1, before.size - 1, 0]);
    const now = dp.ruleCounters.read();
    expect(now.get(ALLOW)).toEqual(live);
    expect(now.get(12345)).toEqual({ packets: 0n, bytes: 0n });
    expect(now.has(DENY)).toBe(false);
  });

  it('rule counters - more rules than the map holds: the lowest ids are counted, the rest reported uncounted, nothing fails', () => {
    const small = NodeDatapath.open({ objectPath: OBJECT_PATH, maxEntries: { tp_rulecnt_v1: 2 } });
    try {
      expect(small.ruleCounters.sync([30, 10, 20])).toEqual([2, 0, 1]);
      expect([...small.ruleCounters.read().keys()].sort((a, b) => a - b)).toEqual([10, 20]);
    } finally {
      small.close();
    }
  });
});
