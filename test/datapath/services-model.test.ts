// The real datapath against the independent service model (test/helpers/service-model.ts)
// on random clusters: services (ports, targetPorts by number and by name, nodePorts,
// externalIPs, traffic policies, publishNotReadyAddresses, headless ones; IPv4, IPv6 or
// dual-stack, either family first), pods (labels, nodes, ready / not ready / terminating,
// named ports, one or both families) and new connections from local pods in either family. Maps are filled by the agent's compilers; each connection's first packet runs
// through BPF_PROG_TEST_RUN. Both must agree on the verdict (not a service, reject,
// drop) and, when translated, on the exact backend — checked byte for byte on the
// rewritten frame — and the backend's answer must come back from the frontend the client
// used (reverse NAT; for a hairpin, from the pod's own veth). A failure prints fast-check's seed and path; FC_SEED=<seed>
// (and FC_PATH=<path>) replays it.
// Needs root (BPF_PROG_TEST_RUN) and `make` first.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRun, TC_ACT } from '../../src/bpf/testrun.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import { addrString } from '../../src/datapath/addr.js';
import { TP_REASON, reasonName } from '../../src/datapath/reasons.js';
import { MAP_NAMES, PROGRAM_NAMES } from '../../src/gen/bpf-names.js';
import type { Service, ServicePort } from '../../src/services/types.js';
import type { PodRecord } from '../../src/store/schema.js';
import { eth, type Frame } from '../helpers/packet.js';
import { OBJECT_PATH } from '../helpers/paths.js';
import { sctpF } from '../helpers/sctp.js';
import { ServiceModel, type SmFlow, type SmVerdict } from '../helpers/service-model.js';
import { BackendIds, clearState, loadCluster, modelCluster, pod, service, type SvcCluster } from '../helpers/services.js';

const RUNS = 500;
const FC = {
  numRuns: RUNS,
  ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}),
  ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}),
};

const NODES = [
  { name: 'n1', addresses: ['10.250.0.10', 'fd00:10:250::10'], podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] },
  { name: 'n2', addresses: ['10.250.0.11', 'fd00:10:250::11'], podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'] },
  { name: 'n3', addresses: ['10.250.0.12', 'fd00:10:250::12'], podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/64'] },
];
const WORLD = { 4: '192.0.2.1', 6: '2001:db8::1' };
/** A node's address of a family. */
const nodeAddr = (i: number, v6: boolean) => NODES[i]!.addresses[v6 ? 1 : 0]!;
const NAMESPACES = ['x', 'y'] as const;

// ---- arbitraries: small alphabets, so selectors often match and ports often resolve ----

const ab = fc.constantFrom('a', 'b');
const podLabels = fc.record({ app: ab, tier: ab }, { requiredKeys: [] });
const selectorArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ app: ab }) },
  { weight: 1, arbitrary: fc.record({ app: ab, tier: ab }) },
  { weight: 1, arbitrary: fc.record({ tier: ab }) },
);

const podArb = fc.record({
  ns: fc.constantFrom(...NAMESPACES),
  labels: podLabels,
  node: fc.constantFrom('n1', 'n2', 'n3'),
  state: fc.constantFrom('ready', 'ready', 'ready', 'unready', 'terminating', 'terminating-ready'),
  http: fc.option(fc.constantFrom(8080, 8081), { nil: undefined, freq: 5 }),
  dns: fc.option(fc.constantFrom(5353, 5354), { nil: undefined, freq: 5 }),
  /** Most pods are dual-stack; some have IPv4 only. */
  v6: fc.constantFrom(true, true, false),
});

const portArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ protocol: fc.constant('TCP' as const), port: fc.constantFrom(80, 443), targetPort: fc.constantFrom<number | string>('http', 'http', 8080, 'dns', 80), nodePort: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ protocol: fc.constant('UDP' as const), port: fc.constantFrom(53, 80), targetPort: fc.constantFrom<number | string>('dns', 'dns', 5353, 'http', 53), nodePort: fc.boolean() }) },
  // SCTP: targetPort is always the port (the parser refuses anything else). A node port
  // is refused by the parser too; drawn anyway, as stored data the compiler must not program.
  { weight: 1, arbitrary: fc.record({ protocol: fc.constant('SCTP' as const), port: fc.constantFrom(3868, 80), targetPort: fc.constant(-1), nodePort: fc.boolean() }) },
);

const serviceArb = fc.record({
  ns: fc.constantFrom(...NAMESPACES),
  selector: selectorArb,
  ports: fc.uniqueArray(portArb, { minLength: 1, maxLength: 3, selector: (p) => `${p.protocol}/${p.port}` }),
  internal: fc.constantFrom('Cluster' as const, 'Local' as const),
  publishNotReady: fc.constantFrom(false, false, false, false, true),
  headless: fc.constantFrom(false, false, false, false, false, false, false, false, false, true),
  externalIP: fc.boolean(),
  /** The service's families, primary first. */
  families: fc.constantFrom<('IPv4' | 'IPv6')[]>(['IPv4'], ['IPv4'], ['IPv6'], ['IPv4', 'IPv6'], ['IPv6', 'IPv4']),
  /** An external IP of the family the service lacks too (a frontend it must not get). */
  strayExternalIP: fc.constantFrom(false, false, true),
});

type Draw<A> = A extends fc.Arbitrary<infer T> ? T : never;
type PodDraw = Draw<typeof podArb>;
type ServiceDraw = Draw<typeof serviceArb>;

function buildCluster(pods: PodDraw[], services: ServiceDraw[], seed: number): SvcCluster {
  const perNode = new Map<string, number>();
  const podRecords: PodRecord[] = pods.map((p, i) => {
    // At least one pod on the node under test: the connections come from local pods.
    const node = i === 0 ? 'n1' : p.node;
    const host = 10 + (perNode.get(node) ?? 0);
    perNode.set(node, host - 9);
    const ports: PodRecord['ports'] = [
      ...(p.http ? [{ name: 'http', port: p.http, protocol: 'TCP' as const }] : []),
      ...(p.dns ? [{ name: 'dns', port: p.dns, protocol: 'UDP' as const }] : []),
    ];
    const ready = p.state === 'ready' || p.state === 'terminating-ready';
    const record = pod(p.ns, `pod${i}`, node, `10.244.${node.slice(1)}.${host}`, p.labels, { ports, ready, terminating: p.state.startsWith('terminating') });
    // The first pod is dual-stack: the node under test always has an IPv6 client.
    return p.v6 || i === 0 ? { ...record, ips: [...record.ips, `fd00:10:244:${node.slice(1)}::${host.toString(16)}`] } : record;
  });
  const svcs: Service[] = services.map((s, j) => {
    const ports = s.ports.map((p, k): Partial<ServicePort> & Pick<ServicePort, 'port' | 'id'> => ({
      name: `p${k}`,
      protocol: p.protocol,
      port: p.port,
      targetPort: p.protocol === 'SCTP' ? p.port : p.targetPort,
      id: j * 4 + k + 1,
      ...(p.nodePort ? { nodePort: 30000 + j * 4 + k } : {}),
    }));
    const addr = { IPv4: `10.244.240.${10 + j}`, IPv6: `fd00:10:96::${(10 + j).toString(16)}` };
    const ext = { IPv4: `10.250.1.${10 + j}`, IPv6: `fd00:10:251::${(10 + j).toString(16)}` };
    const lacking = s.families.length === 1 ? (s.families[0] === 'IPv4' ? 'IPv6' : 'IPv4') : undefined;
    return service(s.ns, `svc${j}`, 'None', s.selector, ports, {
      clusterIPs: s.headless ? ['None'] : s.families.map((f) => addr[f]),
      ipFamilies: s.families,
      ipFamilyPolicy: s.families.length > 1 ? 'RequireDualStack' : 'SingleStack',
      internalTrafficPolicy: s.internal,
      publishNotReadyAddresses: s.publishNotReady,
      externalIPs: [...(s.externalIP ? s.families.map((f) => ext[f]) : []), ...(s.strayExternalIP && lacking ? [ext[lacking]] : [])],
    });
  });
  return {
    node: 'n1',
    nodes: NODES,
    namespaces: NAMESPACES.map((name) => ({ name, labels: { 'kubernetes.io/metadata.name': name } })),
    pods: podRecords,
    services: svcs,
    policies: [],
    seed,
  };
}

const clusterArb = fc
  .record({
    pods: fc.array(podArb, { minLength: 1, maxLength: 10 }),
    services: fc.array(serviceArb, { minLength: 1, maxLength: 4 }),
    seed: fc.nat({ max: 0xffffffff }),
  })
  .map(({ pods, services, seed }) => buildCluster(pods, services, seed));

/** A new connection, drawn as choices resolved against the cluster (indices wrap around). */
const flowArb = fc.record({
  src: fc.nat(7),
  via: fc.oneof(
    { weight: 8, arbitrary: fc.constant('clusterIP' as const) },
    { weight: 2, arbitrary: fc.constantFrom('externalIP' as const, 'nodePort-own' as const, 'nodePort-other' as const) },
    { weight: 1, arbitrary: fc.constantFrom('nodePort-world' as const, 'pod' as const, 'other-port' as const) },
  ),
  svc: fc.nat(3),
  port: fc.nat(2),
  /** Another protocol than the port's (a UDP datagram to a TCP port, …). */
  otherProtocol: fc.constantFrom(false, false, false, false, false, true),
  sport: fc.integer({ min: 1024, max: 65535 }),
  /** IPv6 when the source pod has an address of that family. */
  v6: fc.boolean(),
});
type FlowDraw = Draw<typeof flowArb>;

function resolveFlow(c: SvcCluster, d: FlowDraw, nth: number): SmFlow {
  const local = c.pods.filter((p) => p.node === c.node);
  const from = local[d.src % local.length]!;
  const v6 = d.v6 && from.ips.length > 1;
  const mine = (ip: string) => ip.includes(':') === v6;
  const src = from.ips.find(mine)!;
  const svc = c.services[d.svc % c.services.length]!;
  const port = svc.ports[d.port % svc.ports.length]!;
  const nodePort = port.nodePort ?? 30999;
  const clusterIP = svc.clusterIPs.find((ip) => ip !== 'None' && mine(ip)) ?? (v6 ? 'fd00:10:96::99' : '10.244.240.99');
  const [dst, dport] = (() => {
    switch (d.via) {
      case 'clusterIP':
        return [clusterIP, port.port];
      case 'externalIP':
        return [svc.externalIPs.find(mine) ?? (v6 ? 'fd00:10:251::99' : '10.250.1.99'), port.port];
      case 'nodePort-own':
        return [nodeAddr(0, v6), nodePort];
      case 'nodePort-other':
        return [nodeAddr(d.sport % 2 ? 1 : 2, v6), nodePort];
      case 'nodePort-world':
        return [WORLD[v6 ? 6 : 4], nodePort];
      case 'pod': {
        const of = c.pods.filter((p) => p.ips.some(mine)); // the source is one
        return [of[d.sport % of.length]!.ips.find(mine)!, port.port];
      }
      default:
        return [clusterIP, 8443];
    }
  })();
  const protocol = d.otherProtocol ? (port.protocol === 'TCP' ? 'UDP' : 'TCP') : port.protocol;
  // A distinct source port per connection of a case: each is new to conntrack.
  return { src, dst, protocol, sport: 1024 + ((d.sport + nth * 7919) % 64000), dport };
}

function frameOf(f: SmFlow, src = f.src, dst = f.dst, sport = f.sport, dport = f.dport, reply = false): Frame {
  const ip = () => (src.includes(':') ? eth().ipv6({ src, dst }) : eth().ipv4({ src, dst }));
  switch (f.protocol) {
    case 'TCP':
      return ip().tcp({ sport, dport, flags: reply ? 'SA' : 'S', ...(reply ? { seq: 7000, ack: 1001 } : {}) });
    case 'UDP':
      return ip().udp({ sport, dport }).payload(8);
    case 'SCTP':
      return sctpF(src, dst, sport, dport, reply ? 2 : 1);
  }
}

// ---- the real datapath ----

let dp: NodeDatapath;
beforeAll(() => {
  dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
});
afterAll(() => dp?.close());

const REASONS = Object.values(TP_REASON).filter((r) => r > 0 && r < TP_REASON.TP_REASON_MAX);

type Hook = 'from_pod' | 'to_pod';
const PROGRAM: Record<Hook, string> = { from_pod: PROGRAM_NAMES.tp_from_pod, to_pod: PROGRAM_NAMES.tp_to_pod };

/** Packets counted per reason on one hook, defined reasons only (fast). */
function counts(hook: Hook): Map<number, bigint> {
  const m = dp.obj.map(MAP_NAMES.tp_metrics_v2);
  const key = Buffer.alloc(4);
  const out = new Map<number, bigint>();
  for (const r of REASONS) {
    key.writeUInt32LE((hook === 'from_pod' ? TP_REASON.TP_REASON_MAX : 0) + r);
    out.set(r, (m.lookupPerCpu(key) ?? []).reduce((sum, slot) => sum + slot.readBigUInt64LE(0), 0n));
  }
  return out;
}

interface Seen {
  verdict: string;
  reason: string;
  /** When translated: the backend, and whether the source became the frontend (hairpin). */
  backend?: string;
  hairpin?: boolean;
}

/** Runs a frame on a hook: the one reason counted, the verdict, the bytes out. */
function run(hook: Hook, frame: Buffer): { reason: string; retval: number; data: Buffer } {
  const before = counts(hook);
  const r = testRun(dp.obj.program(PROGRAM[hook]), frame);
  const after = counts(hook);
  const counted = REASONS.filter((x) => after.get(x)! !== before.get(x)!);
  return { reason: counted.length === 1 ? reasonName(counted[0]!) : `${counted.length} reasons`, retval: r.retval, data: r.data };
}

/** The real datapath's answer for a new connection from a pod, read off retval, reason and bytes. */
function runReal(f: SmFlow): { seen: Seen; out: Buffer } {
  const frame = frameOf(f).build();
  const { reason, ...r } = run('from_pod', frame);
  const seen: Seen = { verdict: r.retval === TC_ACT.UNSPEC ? 'pass' : r.retval === TC_ACT.SHOT ? 'drop' : r.retval === TC_ACT.REDIRECT ? 'redirect' : `retval ${r.retval}`, reason };
  if (seen.verdict === 'pass' && !r.data.equals(frame)) {
    // Read the rewritten addresses and port back in the frame's own family.
    const v6 = f.src.includes(':');
    const ip = (o: number) => (v6 ? addrString(6, r.data.subarray(o, o + 16)) : [...r.data.subarray(o, o + 4)].join('.'));
    const [srcAt, dstAt, l4] = v6 ? [22, 38, 54] : [26, 30, 34];
    seen.backend = `${ip(dstAt)}:${r.data.readUInt16BE(l4 + 2)}`;
    seen.hairpin = ip(srcAt) !== f.src;
  }
  return { seen, out: r.data };
}

/** What the model's verdict must look like on the datapath. */
function expected(v: SmVerdict): Seen {
  switch (v.kind) {
    case 'none':
      return { verdict: 'pass', reason: 'pass_default' };
    case 'reject':
      return { verdict: 'redirect', reason: 'reject_no_backend' };
    case 'drop':
      return { verdict: 'drop', reason: 'drop_no_local_backend' };
    case 'backend':
      return { verdict: 'pass', reason: v.hairpin ? 'pass_hairpin' : 'pass_default', backend: `${v.backend.ip}:${v.backend.port}`, hairpin: v.hairpin };
  }
}

const describeCluster = (c: SvcCluster) =>
  JSON.stringify({
    seed: c.seed,
    pods: c.pods.map((p) => [`${p.namespace}/${p.name}`, p.node, p.ips, p.labels, p.ports.map((q) => `${q.name}=${q.port}/${q.protocol}`), p.terminating ? 'terminating' : p.ready ? 'ready' : 'unready']),
    services: c.services.map((s) => [
      `${s.namespace}/${s.name}`,
      s.clusterIPs,
      s.selector,
      s.ports.map((p) => `${p.port}/${p.protocol}→${p.targetPort}${p.nodePort ? ` np ${p.nodePort}` : ''}`),
      s.internalTrafficPolicy,
      s.publishNotReadyAddresses ? 'publishNotReady' : '',
      s.externalIPs,
    ]),
  });

describe('service model', () => {
  it('service model - random services, pods and connections: the datapath and the model agree on the verdict and the exact backend', () => {
    const kinds = new Map<string, number>();
    let hairpins = 0;
    let ipv6 = 0;
    fc.assert(
      fc.property(clusterArb, fc.array(flowArb, { minLength: 1, maxLength: 12 }), (c, draws) => {
        clearState(dp);
        loadCluster(dp, c, new BackendIds());
        const model = new ServiceModel(modelCluster(c));
        draws.forEach((d, i) => {
          const f = resolveFlow(c, d, i);
          const v = model.decide(f);
          kinds.set(v.kind, (kinds.get(v.kind) ?? 0) + 1);
          if (f.src.includes(':') && v.kind === 'backend') ipv6++;
          if (v.kind === 'backend' && v.hairpin) hairpins++;
          const { seen, out } = runReal(f);
          const why = `${JSON.stringify(f)} in ${describeCluster(c)}`;
          expect(seen, why).toEqual(expected(v));
          if (v.kind === 'backend') {
            // Byte for byte: destination → backend (and, hairpin, source → frontend), checksums from scratch.
            const want = frameOf(f, v.hairpin ? f.dst : f.src, v.backend.ip, f.sport, v.backend.port).build();
            expect(out.toString('hex'), why).toBe(want.toString('hex'));
            // The backend's answer reaches the client from the address and port it used. A
            // hairpin answer leaves the pod itself, to the frontend address it came from.
            const answer = v.hairpin ? frameOf(f, f.src, f.dst, v.backend.port, f.sport, true) : frameOf(f, v.backend.ip, f.src, v.backend.port, f.sport, true);
            const back = run(v.hairpin ? 'from_pod' : 'to_pod', answer.build());
            expect({ reason: back.reason, retval: back.retval, bytes: back.data.toString('hex') }, `answer to ${why}`).toEqual({
              reason: 'pass_reply',
              retval: TC_ACT.UNSPEC,
              bytes: frameOf(f, f.dst, f.src, f.dport, f.sport, true).build().toString('hex'),
            });
          }
        });
      }),
      FC,
    );
    console.log(`service model: ${RUNS} clusters, connections by outcome ${JSON.stringify(Object.fromEntries(kinds))}, ${hairpins} hairpins, ${ipv6} translated IPv6 connections`);
    // The draws must reach every outcome often, or agreement proves little.
    for (const kind of ['none', 'reject', 'drop', 'backend']) expect(kinds.get(kind) ?? 0, `${kind} connections drawn`).toBeGreaterThan(30);
    expect(hairpins, 'hairpin connections drawn').toBeGreaterThan(5);
    expect(ipv6, 'translated IPv6 connections drawn').toBeGreaterThan(50);
  });
});
