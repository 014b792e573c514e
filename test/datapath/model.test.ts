// The real datapath against the independent model (test/helpers/model.ts), on random
// clusters, NetworkPolicies (the whole v1 surface: selectors with expressions, ipBlock,
// ports by number, range and name, TCP, UDP and SCTP) and packets (ICMP errors too):
// every hook a packet crosses must agree on pass/drop and on the reason counted. Maps
// are filled by the agent's compiler; frames run through BPF_PROG_TEST_RUN. Bounded:
// 2,000 random clusters with their packets (about 10 s; TCPLANE_MODEL_RUNS changes it),
// 50 clusters per matrix, 100 cases for the other properties. A failure
// prints its seed; `TCPLANE_MODEL_SEED=<seed>` replays it. Needs root (BPF_PROG_TEST_RUN)
// and `make` first.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRun, TC_ACT } from '../../src/bpf/testrun.js';
import { TP_REASON, reasonName } from '../../src/datapath/reasons.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import { MAP_NAMES, PROGRAM_NAMES } from '../../src/gen/bpf-names.js';
import { compile } from '../../src/policy/compile.js';
import type { ClusterAction, ClusterNetworkPolicy, ClusterPeer, ClusterPort, ClusterRule, ClusterSelector, EgressRule, IngressRule, NetworkPolicy, PolicyPeer, PolicyPort, PolicyType, SelectorRequirement } from '../../src/policy/types.js';
import { netpol } from '../helpers/cluster.js';
import { frameOf } from '../helpers/frames.js';
import { desiredInputOf, fragmentOf, fragmentsOf, icmpErrorFor, PolicyModel, reply, type Hook, type Labels, type ModelCluster, type ModelPacket, type ModelPod } from '../helpers/model.js';
import { OBJECT_PATH } from '../helpers/paths.js';

const RUNS = 100;
const RANDOM_RUNS = Number(process.env.TCPLANE_MODEL_RUNS ?? 2000);
const SEED = process.env.TCPLANE_MODEL_SEED === undefined ? {} : { seed: Number(process.env.TCPLANE_MODEL_SEED) };

// ---- arbitraries: small alphabets, so selectors often match and tuples often repeat ----

const NAMESPACES = ['x', 'y', 'z'] as const;
const labels = (keys: string[], values: string[], maxKeys: number) =>
  fc.dictionary(fc.constantFrom(...keys), fc.constantFrom(...values), { maxKeys });
const podLabels = labels(['app', 'tier'], ['a', 'b'], 2);
const nsLabels = labels(['team', 'env'], ['a', 'b'], 2);
/** matchExpressions over the same small alphabet: 0 to 2 requirements, any operator. */
const requirements = (keys: string[], values: string[]): fc.Arbitrary<SelectorRequirement[]> =>
  fc.array(
    fc.oneof(
      fc.record({ key: fc.constantFrom(...keys), operator: fc.constantFrom('In' as const, 'NotIn' as const), values: fc.subarray(values, { minLength: 1 }) }),
      fc.record({ key: fc.constantFrom(...keys), operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const), values: fc.constant<string[]>([]) }),
    ),
    { maxLength: 2 },
  );
const selector = (l: fc.Arbitrary<Labels>, keys: string[], values: string[]) =>
  fc
    .tuple(l, fc.oneof({ weight: 2, arbitrary: fc.constant<SelectorRequirement[]>([]) }, { weight: 1, arbitrary: requirements(keys, values) }))
    .map(([matchLabels, matchExpressions]) => ({ matchLabels, matchExpressions }));
const smallPodSelector = selector(labels(['app', 'tier'], ['a', 'b'], 1), ['app', 'tier'], ['a', 'b']);
const smallNsSelector = selector(labels(['team', 'env'], ['a', 'b'], 1), ['team', 'env'], ['a', 'b']);

/**
 * ipBlocks over the addresses the cluster uses (pods 10.244.<node>.<10+i> and
 * fd00:244:<node>::<10+i>, nodes 10.250.0.10 and .11, outside addresses): one pod's
 * address, two pods', a pod range with and without a hole, every pod, every node but
 * this one, the world without the pods, the other family.
 */
const BLOCKS = [
  { cidr: '10.244.1.10/32', except: [] },
  { cidr: '10.244.1.11/32', except: [] },
  { cidr: '10.244.1.8/30', except: [] },
  { cidr: '10.244.1.0/24', except: ['10.244.1.10/32'] },
  { cidr: '10.244.0.0/16', except: [] },
  { cidr: '10.244.0.0/16', except: ['10.244.1.0/24'] },
  { cidr: '10.244.2.0/24', except: ['10.244.2.0/28'] },
  { cidr: '10.250.0.0/24', except: ['10.250.0.10/32'] },
  { cidr: '0.0.0.0/0', except: ['10.244.0.0/16'] },
  { cidr: '192.0.2.0/24', except: [] },
  { cidr: 'fd00:244::/32', except: ['fd00:244:2::/64'] },
  { cidr: 'fd00:244:1::10/128', except: [] },
  { cidr: '::/0', except: [] },
];
const peer: fc.Arbitrary<PolicyPeer> = fc.oneof(
  smallPodSelector.map((podSelector) => ({ podSelector })),
  smallNsSelector.map((namespaceSelector) => ({ namespaceSelector })),
  fc.record({ podSelector: smallPodSelector, namespaceSelector: smallNsSelector }),
  fc.constantFrom(...BLOCKS).map((ipBlock) => ({ ipBlock })),
);
const PORTS = [53, 80, 443] as const;
/** Names pods declare (see `pods`); a rule may name one. */
const PORT_NAMES = ['web', 'dns'] as const;
const protocol = fc.constantFrom('TCP' as const, 'UDP' as const, 'SCTP' as const);
/** A rule's port: every port of a protocol, one port, a range (endPort), or a name (the destination pod's). */
const port: fc.Arbitrary<PolicyPort> = fc.oneof(
  fc.record({ protocol }),
  fc.record({ protocol, port: fc.constantFrom(...PORTS) }),
  fc.record({ protocol, port: fc.constantFrom(53, 80, 443), endPort: fc.constantFrom(80, 443, 8080) }).map((p) => ({ ...p, endPort: Math.max(p.port, p.endPort) })),
  fc.record({ protocol, port: fc.constantFrom<string>(...PORT_NAMES) }),
);
// The normalized shape: peers and `ports` are either absent (all) or non-empty.
const rule = fc.record({
  peers: fc.option(fc.array(peer, { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 3 }),
  ports: fc.option(fc.array(port, { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 2 }),
});
const ingressRule: fc.Arbitrary<IngressRule> = rule.map(({ peers, ports }) => ({ ...(peers ? { from: peers } : {}), ...(ports ? { ports } : {}) }));
const egressRule: fc.Arbitrary<EgressRule> = rule.map(({ peers, ports }) => ({ ...(peers ? { to: peers } : {}), ...(ports ? { ports } : {}) }));
const policyTypes = fc.constantFrom<PolicyType[]>(['Ingress'], ['Ingress'], ['Egress'], ['Ingress', 'Egress']);
const policy = (i: number): fc.Arbitrary<NetworkPolicy> =>
  fc
    .record({
      ns: fc.constantFrom(...NAMESPACES),
      podSelector: smallPodSelector,
      policyTypes,
      ingress: fc.array(ingressRule, { maxLength: 2 }),
      egress: fc.array(egressRule, { maxLength: 2 }),
    })
    .map(({ ns, podSelector, policyTypes, ingress, egress }) => netpol(ns, `p${i}`, { podSelector, policyTypes, ingress, egress }));
const policies: fc.Arbitrary<NetworkPolicy[]> = fc
  .oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => policy(i))));

// Cluster policies: tiers, priorities (often equal, so the kind and name order matters),
// subjects, rules in order with Accept, Deny and Pass, peers by namespace, pod or network.
const clusterSelector: fc.Arbitrary<ClusterSelector> = fc.oneof(
  smallNsSelector.map((namespaces) => ({ namespaces })),
  fc.record({ namespaceSelector: smallNsSelector, podSelector: smallPodSelector }).map((pods) => ({ pods })),
);
const clusterPeer: fc.Arbitrary<ClusterPeer> = fc.oneof(
  { weight: 3, arbitrary: clusterSelector },
  { weight: 1, arbitrary: fc.subarray(BLOCKS.map((b) => b.cidr), { minLength: 1, maxLength: 2 }).map((networks) => ({ networks })) },
  { weight: 1, arbitrary: selector(labels(['zone'], ['a', 'b'], 1), ['zone'], ['a', 'b']).map((nodes) => ({ nodes })) },
);
const clusterPort: fc.Arbitrary<ClusterPort> = fc.oneof(
  fc.record({ protocol }),
  fc.record({ protocol, port: fc.constantFrom(...PORTS) }),
  fc.record({ protocol, port: fc.constantFrom(53, 80), endPort: fc.constantFrom(80, 443) }).map((p) => ({ ...p, endPort: Math.max(p.port, p.endPort) })),
  fc.constantFrom<string>(...PORT_NAMES).map((name) => ({ name })),
);
/** Ingress peers are pods only (the API has networks for egress alone). */
const clusterRule = (peerArb: fc.Arbitrary<ClusterPeer>): fc.Arbitrary<ClusterRule> =>
  fc
    .record({
      action: fc.constantFrom<ClusterAction>('Accept', 'Deny', 'Pass'),
      peers: fc.array(peerArb, { minLength: 1, maxLength: 2 }),
      ports: fc.option(fc.array(clusterPort, { minLength: 1, maxLength: 2 }), { nil: undefined, freq: 2 }),
    })
    // Networks and nodes have no named ports (the parser refuses the pair).
    .map((r) => {
      const ports = r.peers.some((x) => x.networks || x.nodes) ? r.ports?.filter((q) => !('name' in q)) : r.ports;
      return { action: r.action, peers: r.peers, ...(ports && ports.length > 0 ? { ports } : {}) };
    });
const clusterPolicy = (i: number): fc.Arbitrary<ClusterNetworkPolicy> =>
  fc
    .record({
      kind: fc.constantFrom('ClusterNetworkPolicy' as const, 'AdminNetworkPolicy' as const, 'BaselineAdminNetworkPolicy' as const),
      tier: fc.constantFrom('Admin' as const, 'Baseline' as const),
      priority: fc.integer({ min: 0, max: 2 }),
      subject: clusterSelector,
    })
    .chain((h) => {
      const tier = h.kind === 'AdminNetworkPolicy' ? 'Admin' : h.kind === 'BaselineAdminNetworkPolicy' ? 'Baseline' : h.tier;
      const rules = (peerArb: fc.Arbitrary<ClusterPeer>) =>
        fc.array(clusterRule(peerArb), { maxLength: 3 }).map((rs) => (h.kind === 'BaselineAdminNetworkPolicy' ? rs.filter((r) => r.action !== 'Pass') : rs));
      return fc.record({ ingress: rules(clusterSelector), egress: rules(clusterPeer) }).map(
        ({ ingress, egress }): ClusterNetworkPolicy => ({
          kind: h.kind,
          apiVersion: h.kind === 'ClusterNetworkPolicy' ? 'policy.networking.k8s.io/v1alpha2' : 'policy.networking.k8s.io/v1alpha1',
          name: `c${i}`,
          tier,
          priority: h.kind === 'BaselineAdminNetworkPolicy' ? 0 : h.priority,
          subject: h.subject,
          ingress,
          egress,
          source: { file: 'test.yaml', line: 1 },
        }),
      );
    });
const clusterPolicies: fc.Arbitrary<ClusterNetworkPolicy[]> = fc
  .oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 3 }) })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => clusterPolicy(i))));

const HOST = '10.250.0.10';
const OUTSIDE = ['192.0.2.1', HOST, '10.250.0.11', '10.244.2.250'] as const; // world, this node, another node, unmanaged
const OUTSIDE6 = '2001:db8::1';
/** Routers outside that send ICMP errors (too big, time exceeded) about packets they forward. */
const ROUTER = '192.0.2.254';
const ROUTER6 = '2001:db8::fe';

const pods = fc
  .array(
    fc.record({
      ns: fc.constantFrom(...NAMESPACES),
      labels: podLabels,
      local: fc.boolean(),
      v6: fc.boolean(),
      // Two pods may give one name different numbers, or not declare it at all.
      ports: fc.subarray([
        { name: 'web', port: 80, protocol: 'TCP' as const },
        { name: 'web', port: 8080, protocol: 'TCP' as const },
        { name: 'dns', port: 53, protocol: 'UDP' as const },
        { name: 'dns', port: 5353, protocol: 'TCP' as const },
      ]),
    }),
    { minLength: 1, maxLength: 6 },
  )
  .map((ps) =>
    ps.map((p, i): ModelPod => {
      const local = i === 0 || p.local; // at least one pod on the node under test
      const n = local ? 1 : 2;
      return {
        namespace: p.ns,
        name: `pod${i}`,
        labels: p.labels,
        node: local ? 'n1' : 'n2',
        ips: [`10.244.${n}.${10 + i}`, ...(p.v6 ? [`fd00:244:${n}::${10 + i}`] : [])],
        // One number per name and protocol, as a pod declares them.
        ports: p.ports.filter((d, j) => p.ports.findIndex((e) => e.name === d.name && e.protocol === d.protocol) === j),
      };
    }),
  );

const cluster: fc.Arbitrary<ModelCluster> = fc
  .record({ nsl: fc.tuple(nsLabels, nsLabels, nsLabels), pods, policies, clusterPolicies })
  .map(({ nsl, pods, policies, clusterPolicies }) => ({
    localNode: 'n1',
    nodes: [
      { name: 'n1', addresses: [HOST], podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'], labels: { 'kubernetes.io/hostname': 'n1', zone: 'a' } },
      { name: 'n2', addresses: ['10.250.0.11'], podCIDRs: ['10.244.2.0/24', 'fd00:244:2::/64'], labels: { 'kubernetes.io/hostname': 'n2', zone: 'b' } },
    ],
    namespaces: NAMESPACES.map((name, i) => ({ name, labels: { 'kubernetes.io/metadata.name': name, ...nsl[i] } })),
    pods,
    policies: [...policies, ...clusterPolicies],
  }));

/** A packet drawn as choices; resolved against the cluster (pod indices wrap around). */
interface PacketChoice {
  src: number | string; // pod index, or an outside address
  /** `{ local: i }`: the i-th pod of the node under test (wrapping around). */
  dst: number | string | { local: number };
  v6: boolean;
  protocol: 'TCP' | 'UDP' | 'SCTP' | 'ICMP';
  sport: number;
  dport: number;
  icmpType: 'request' | 'reply' | 'unreachable';
  icmpId: number;
  /** Send the reply of the previous packet instead. */
  replyToPrevious: boolean;
  /**
   * Send an ICMP error about the previous packet instead, back to its sender: from its
   * destination (port unreachable), or from a router outside (too big, time exceeded).
   */
  errorToPrevious: 'none' | 'peer' | 'router';
  errorType: number;
  /** Sent from the source pod's veth even when the source is no local pod (spoofing). */
  spoof: boolean;
  /**
   * Sent as one fragment of datagram fragId: the first (L4 header, more to come), a later
   * one (offset 3, no L4 header; its first may or may not have been sent), or an atomic
   * fragment (offset 0, no more: a whole packet; IPv6 only, IPv4 has no such thing).
   * 'datagram': the first fragment, then (in the random-packets property) its middle and
   * last fragments right after it.
   */
  fragment: 'none' | 'first' | 'later' | 'atomic' | 'datagram';
  fragId: number;
  fragMore: boolean;
}
const packetChoice: fc.Arbitrary<PacketChoice> = fc.record({
  src: fc.oneof({ weight: 3, arbitrary: fc.nat(5) }, { weight: 1, arbitrary: fc.constantFrom<string>(...OUTSIDE) }),
  dst: fc.oneof(
    { weight: 4, arbitrary: fc.nat(5).map((local) => ({ local })) },
    { weight: 1, arbitrary: fc.nat(5) },
    { weight: 1, arbitrary: fc.constantFrom<string>(OUTSIDE[0]) },
  ),
  v6: fc.constantFrom(false, false, true),
  protocol: fc.constantFrom('TCP' as const, 'UDP' as const, 'SCTP' as const, 'ICMP' as const),
  sport: fc.constantFrom(1000, 1001),
  dport: fc.constantFrom(53, 80, 443, 5353, 8080),
  icmpType: fc.constantFrom('request' as const, 'reply' as const, 'unreachable' as const),
  icmpId: fc.constantFrom(1, 2),
  replyToPrevious: fc.constantFrom(false, false, true),
  errorToPrevious: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'peer' as const, 'router' as const),
  errorType: fc.nat(2),
  spoof: fc.constantFrom(false, false, false, false, false, false, false, false, false, true),
  fragment: fc.constantFrom(...(['none', 'none', 'none', 'none', 'first', 'later', 'atomic', 'datagram', 'datagram'] as const)),
  fragId: fc.constantFrom(1, 2),
  fragMore: fc.boolean(),
});

interface Sent {
  packet: ModelPacket;
  via: 'pod' | 'network';
}

function podOf(c: ModelCluster, who: number | { local: number }): ModelPod {
  if (typeof who === 'number') return c.pods[who % c.pods.length]!;
  const local = c.pods.filter((p) => p.node === c.localNode);
  return local[who.local % local.length]!;
}

function addressOf(c: ModelCluster, who: PacketChoice['src' | 'dst'], v6: boolean): string {
  if (typeof who === 'string') return v6 ? OUTSIDE6 : who;
  const p = podOf(c, who);
  return (v6 ? p.ips[1] : undefined) ?? p.ips[0]!;
}

function resolve(c: ModelCluster, model: PolicyModel, ch: PacketChoice, previous: Sent | undefined): Sent {
  let packet: ModelPacket;
  if (ch.errorToPrevious !== 'none' && previous) {
    const q = previous.packet;
    const v6 = q.src.includes(':');
    const type = (v6 ? [1, 2, 3] : [3, 11, 12])[ch.errorType]!;
    packet = icmpErrorFor(q, ch.errorToPrevious === 'peer' ? q.dst : v6 ? ROUTER6 : ROUTER, type);
  } else if (ch.replyToPrevious && previous) {
    packet = reply(previous.packet);
  } else {
    // IPv6 only when both ends have an IPv6 address (outside addresses always do).
    const v6 = ch.v6 && [ch.src, ch.dst].every((w) => typeof w === 'string' || podOf(c, w).ips.length > 1);
    const src = addressOf(c, ch.src, v6);
    const dst = addressOf(c, ch.dst, v6);
    if (ch.protocol === 'ICMP') {
      const types = v6 ? { request: 128, reply: 129, unreachable: 1 } : { request: 8, reply: 0, unreachable: 3 };
      packet = { src, dst, protocol: v6 ? 'ICMPv6' : 'ICMP', icmpType: types[ch.icmpType], icmpId: ch.icmpId };
    } else {
      packet = { src, dst, protocol: ch.protocol, sport: ch.sport, dport: ch.dport, ...(ch.protocol === 'TCP' ? { tcpFlags: 0x02 } : {}) };
    }
    if (ch.fragment === 'first' || ch.fragment === 'datagram') packet = fragmentOf(packet, ch.fragId, 0, true);
    else if (ch.fragment === 'later') packet = fragmentOf(packet, ch.fragId, 3, ch.fragMore);
    else if (ch.fragment === 'atomic' && v6) packet = fragmentOf(packet, ch.fragId, 0, false);
  }
  const srcPod = model.podOf(packet.src);
  const local = srcPod?.node === c.localNode;
  return { packet, via: local || ch.spoof ? 'pod' : 'network' };
}

// ---- the real datapath ----

let dp: NodeDatapath;
beforeAll(() => {
  dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
});
afterAll(() => dp?.close());

const PROGRAM: Record<Hook, string> = { to_pod: PROGRAM_NAMES.tp_to_pod, from_pod: PROGRAM_NAMES.tp_from_pod };
const REASONS = Object.values(TP_REASON).filter((r) => r > 0 && r < TP_REASON.TP_REASON_MAX);

/**
 * Packets counted per reason in one direction. Reads only the slots of defined reasons
 * (dp.readMetrics() reads all 1024; this keeps 100-case properties fast).
 */
function countsOf(hook: Hook): Map<number, bigint> {
  const m = dp.obj.map(MAP_NAMES.tp_metrics_v2);
  const dir = hook === 'to_pod' ? 0 : 1;
  const key = Buffer.alloc(4);
  const out = new Map<number, bigint>();
  for (const r of REASONS) {
    key.writeUInt32LE(dir * TP_REASON.TP_REASON_MAX + r);
    out.set(r, (m.lookupPerCpu(key) ?? []).reduce((sum, slot) => sum + slot.readBigUInt64LE(0), 0n));
  }
  return out;
}

/** Runs the program of `hook`; the reason it counted (exactly one), checking retval agrees and the frame is untouched. */
function runReal(hook: Hook, frame: Buffer): string {
  const before = countsOf(hook);
  const r = testRun(dp.obj.program(PROGRAM[hook]), frame);
  const after = countsOf(hook);
  const counted = REASONS.filter((x) => after.get(x)! !== before.get(x)!);
  expect(counted, 'exactly one reason counted').toHaveLength(1);
  const reason = reasonName(counted[0]!);
  expect(r.retval, `retval for ${reason}`).toBe(reason.startsWith('pass_') ? TC_ACT.UNSPEC : TC_ACT.SHOT);
  expect(r.data.equals(frame), 'frame not rewritten').toBe(true);
  return reason;
}

function reset(c: ModelCluster): PolicyModel {
  for (const k of [...dp.ct.raw.keys()]) dp.ct.raw.delete(k);
  for (const k of [...dp.frag.raw.keys()]) dp.frag.raw.delete(k);
  dp.maps.sync(compile(desiredInputOf(c).input));
  return new PolicyModel(c);
}

function resync(c: ModelCluster, model: PolicyModel): void {
  dp.maps.sync(compile(desiredInputOf(c).input));
  model.setCluster(c);
}

/** Sends a packet through every hook it crosses; compares each with the model. Returns the reasons. */
function deliver(model: PolicyModel, s: Sent): string[] {
  const frame = frameOf(s.packet).build();
  const seen: string[] = [];
  for (const hook of model.route(s.packet, s.via)) {
    const want = model.hook(hook, s.packet);
    const got = runReal(hook, frame);
    expect(`${hook}: ${got}`, JSON.stringify(s)).toBe(`${hook}: ${want.reason}`);
    seen.push(got);
    if (!want.pass) break;
  }
  return seen;
}

const describeCase = (c: ModelCluster) =>
  JSON.stringify({
    namespaces: c.namespaces.map((n) => [n.name, n.labels]),
    pods: c.pods.map((p) => [`${p.namespace}/${p.name}`, p.node, p.ips.join(','), p.labels, p.ports]),
    policies: c.policies.map((p) =>
      p.kind === 'NetworkPolicy'
        ? { ns: p.namespace, sel: p.podSelector, types: p.policyTypes, ingress: p.ingress, egress: p.egress }
        : { kind: p.kind, name: p.name, tier: p.tier, priority: p.priority, subject: p.subject, ingress: p.ingress, egress: p.egress },
    ),
  });

type Probe = Omit<ModelPacket, 'src' | 'dst'>;
const tcpProbes = (ports: number[]): Probe[] => ports.map((dport) => ({ protocol: 'TCP' as const, dport, tcpFlags: 0x02 }));
const udpProbes = (ports: number[]): Probe[] => ports.map((dport) => ({ protocol: 'UDP' as const, dport }));
const ECHO_PROBE: Probe = { protocol: 'ICMP', icmpType: 8 };
const SCTP_PROBE: Probe = { protocol: 'SCTP', dport: 80 };
const localIps = (c: ModelCluster) => c.pods.filter((p) => p.node === c.localNode).map((p) => p.ips[0]!);
const pairs = (from: string[], to: string[]) => from.flatMap((src) => to.map((dst) => [src, dst] as const));

/**
 * Every (source, destination) pair of each of 50 clusters on every probe, each a new
 * connection (a fresh source port or echo id), compared hook by hook; returns how many
 * were decided by policy (not default, not conntrack).
 */
function matrix(clusters: fc.Arbitrary<ModelCluster>, probes: Probe[], pairsOf: (c: ModelCluster) => (readonly [string, string])[], via: Sent['via'], seed: { seed?: number }): number {
  let decided = 0;
  fc.assert(
    fc.property(clusters, (c) => {
      const model = reset(c);
      let n = 0;
      for (const [src, dst] of pairsOf(c))
        for (const probe of probes) {
          n++;
          const packet: ModelPacket = { ...probe, src, dst, ...(probe.protocol === 'ICMP' ? { icmpId: n } : { sport: 10000 + n }) };
          const [got] = deliver(model, { packet, via });
          if (got === 'pass_policy' || got === 'drop_policy_default') decided++;
        }
    }),
    { numRuns: 50, ...seed },
  );
  return decided;
}

describe('model', () => {
  it('model - random policies and packets: the datapath agrees with the model on every hook', () => {
    fc.assert(
      fc.property(cluster, fc.array(packetChoice, { minLength: 1, maxLength: 12 }), (c, choices) => {
        const model = reset(c);
        let previous: Sent | undefined;
        for (const ch of choices) {
          const s = resolve(c, model, ch, previous);
          deliver(model, s);
          if (ch.fragment === 'datagram' && !(ch.replyToPrevious && previous)) {
            for (const later of fragmentsOf(s.packet, ch.fragId).slice(1)) deliver(model, { ...s, packet: later });
          }
          previous = s;
        }
      }),
      { numRuns: RANDOM_RUNS, ...SEED },
    );
  });

  it('model - ingress matrix: every source to every local pod on every protocol and port, each a new connection', () => {
    const probes: Probe[] = [...tcpProbes([53, 80, 443, 8080]), ...udpProbes([53, 80]), SCTP_PROBE, ECHO_PROBE];
    const decided = matrix(cluster, probes, (c) => pairs([...c.pods.map((p) => p.ips[0]!), ...OUTSIDE], localIps(c)), 'network', {});
    // The clusters must have isolated pods now and then, or this proves little.
    expect(decided).toBeGreaterThan(100);
  });

  it('model - egress matrix: every local pod to every pod and outside address on every protocol and port, each a new connection', () => {
    const probes: Probe[] = [...tcpProbes([53, 80, 443, 5353, 8080]), ...udpProbes([53, 80, 5353]), SCTP_PROBE, ECHO_PROBE];
    // Every policy isolates egress here, and names a port one time in three: what egress rules mean is the point.
    const egressHeavy = fc.record({ c: cluster, named: fc.array(fc.constantFrom<string>(...PORT_NAMES), { minLength: 3, maxLength: 3 }) }).map(({ c, named }) => ({
      ...c,
      policies: c.policies.map((p, i) =>
        p.kind !== 'NetworkPolicy'
          ? p
          : {
              ...p,
              policyTypes: ['Ingress', 'Egress'] as PolicyType[],
              egress: [...p.egress, { ports: [{ protocol: i % 2 ? ('UDP' as const) : ('TCP' as const), port: named[i % 3]! }] }],
            },
      ),
    }));
    const decided = matrix(egressHeavy, probes, (c) => pairs(localIps(c), [...c.pods.map((p) => p.ips[0]!), ...OUTSIDE]), 'pod', SEED);
    // The clusters must have egress-isolated pods now and then, or this proves little.
    expect(decided).toBeGreaterThan(100);
  });

  it('model - related: an ICMP error about a packet that passed reaches its sender as related on every hook, whatever the policies', () => {
    let related = 0;
    fc.assert(
      fc.property(cluster, packetChoice, fc.constantFrom('peer' as const, 'router' as const), fc.nat(2), (c, ch, from, errorType) => {
        const model = reset(c);
        const request = resolve(c, model, { ...ch, replyToPrevious: false, errorToPrevious: 'none', spoof: false, fragment: ch.fragment === 'later' ? 'none' : ch.fragment }, undefined);
        const q = request.packet;
        const tracked = q.protocol !== 'ICMP' && q.protocol !== 'ICMPv6' ? true : ch.icmpType !== 'unreachable';
        const quotable = !q.fragment || (q.fragment.offset === 0 && !q.src.includes(':'));
        const there = deliver(model, request);
        const local = (ip: string) => model.podOf(ip)?.node === c.localNode;
        // The error must cross a hook of this node: the sender's, or (from the peer) the peer's.
        const crosses = from === 'router' ? local(q.src) : local(q.src) || local(q.dst);
        if (q.src === q.dst || !tracked || !quotable || !crosses || !there.every((r) => r.startsWith('pass_'))) return;
        const back = resolve(c, model, { ...ch, errorToPrevious: from, errorType, replyToPrevious: false, spoof: false, fragment: 'none' }, request);
        const reasons = deliver(model, back);
        // Independent of the model: a router's error crosses the sender's hook only; the peer's, the peer's too.
        for (const r of reasons) expect(r, describeCase(c)).toBe('pass_related');
        related += reasons.length;
      }),
      // Three times the runs of the others: cluster policies deny many first packets, and an error needs one that passed.
      { numRuns: RUNS * 3, ...SEED },
    );
    expect(related).toBeGreaterThan(20);
  });

  it('model - conntrack: a request that passed gets its reply through, unless the policies changed to deny the request', () => {
    fc.assert(
      fc.property(cluster, policies, packetChoice, (c, later, ch) => {
        const model = reset(c);
        const request = resolve(c, model, { ...ch, replyToPrevious: false, errorToPrevious: 'none', spoof: false }, undefined);
        const there = deliver(model, request);
        const after = { ...c, policies: later };
        resync(after, model);
        const back = resolve(after, model, { ...ch, replyToPrevious: true, errorToPrevious: 'none', spoof: false }, request);
        const reasons = deliver(model, back);
        // Independent of the model: every hook the reply crosses knows the connection, and
        // only the new policies may stop it; with none left, nothing does. (Not for a pod
        // talking to itself: with a symmetric tuple, such as ICMP, the request is already
        // its own reply on the second hook; and no such packet crosses a veth.)
        if (request.packet.src !== request.packet.dst && there.every((r) => r.startsWith('pass_'))) {
          expect(reasons.length, describeCase(c)).toBeGreaterThan(0);
          for (const r of reasons) expect(['pass_reply', 'drop_policy_default'], describeCase(c)).toContain(r);
          if (later.length === 0) for (const r of reasons) expect(r, describeCase(c)).toBe('pass_reply');
        }
      }),
      { numRuns: RUNS },
    );
  });
});
