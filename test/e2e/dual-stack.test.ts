// Dual-stack end to end (labs/dual-stack.yaml): every pod has an IPv4 and an IPv6
// address, agents enforce both, and `lab probe` probes every pair in each family.
// Beyond the matrices of netpol-upstream.test.ts, this checks what only a dual-stack
// path shows: `--families`, WHOAMI over IPv6, IPv6 fragments across nodes, neighbour
// discovery and ICMPv6 errors reaching an isolated pod, and a PreferDualStack service
// reached in both families from pods and from a client. Needs root and `make build`:
// creates tp-* namespaces, links, processes and pins, all removed in afterAll.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeTargets, type ProbeTarget } from '../../src/lab/probe.js';
import { parseLabSpec } from '../../src/lab/spec.js';
import { run } from '../../src/lab/exec.js';
import { readLabState } from '../../src/lab/state.js';
import { tcplane, type CliResult, type ProbeRow } from '../helpers/cli.js';
import { expectCut, flowsAcross } from '../helpers/flows.js';
import { ROOT } from '../helpers/paths.js';

const LAB = 'labs/dual-stack.yaml';
const UDP_ONCE = `${ROOT}test/e2e/fixtures/udp-once.mjs`;
const plan = parseLabSpec(readFileSync(`${ROOT}${LAB}`, 'utf8'), LAB);
const ips = (key: string) => plan.pods.find((p) => p.key === key)!.ips;
const FAMILIES = [
  { family: 4, index: 0 },
  { family: 6, index: 1 },
] as const;

/** x/a may send only to x/b: TCP 80 and UDP 53-60 (where b serves 53 only); nothing may reach x/a. */
const ISOLATE_A = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-isolated, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  egress:
    - to: [{podSelector: {matchLabels: {pod: b}}}]
      ports: [{port: 80, protocol: TCP}, {port: 53, endPort: 60, protocol: UDP}]
`;

/** x/a isolated both ways, nothing allowed. */
const A_NOTHING = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-nothing, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
`;

/** x/a may send only to x/b (any port): through the service too, judged on the backend it is sent to. */
const A_TO_B = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-to-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to: [{podSelector: {matchLabels: {pod: b}}}]
`;

/** Applies `text` for the duration of `fn`, then deletes it (also when fn fails). */
async function withPolicy<T>(name: string, text: string, fn: () => Promise<T>): Promise<T> {
  const file = join(tmpdir(), `tp-dual-${name}-${process.pid}.yaml`);
  writeFileSync(file, text);
  try {
    await cli('apply', '-f', file, '--wait');
    return await fn();
  } finally {
    await tcplane(['delete', '-f', file, '--ignore-not-found', '--wait']);
    rmSync(file, { force: true });
  }
}

async function cli(...args: string[]) {
  const r = await tcplane(args);
  expect(r.code, `tcplane ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

async function probe(...extra: string[]): Promise<ProbeRow[]> {
  return JSON.parse((await cli('lab', 'probe', '--json', '--timeout-ms', '500', ...extra)).stdout) as ProbeRow[];
}

/** One probe from `from` to each target, in the lab's daemon of `from`. */
async function probeFrom(from: string, targets: ProbeTarget[]) {
  return probeTargets(await readLabState(), from, targets, 700);
}

/** x/a → x/b (allowed, served), x/b on an allowed port nobody serves, x/c (not allowed): UDP, in each family. */
const udpTargets = (): ProbeTarget[] =>
  FAMILIES.flatMap(({ index }) => [
    { to: 'x/b', ip: ips('x/b')[index]!, port: 53, protocol: 'UDP' as const },
    { to: 'x/b', ip: ips('x/b')[index]!, port: 54, protocol: 'UDP' as const },
    { to: 'x/c', ip: ips('x/c')[index]!, port: 54, protocol: 'UDP' as const },
  ]);
const outcome = (r: { connected: boolean; reason?: string }) => (r.connected ? 'connected' : r.reason!);

interface ServiceRow {
  from: string;
  to: string;
  address: string;
  port: number;
  protocol: string;
  family: 4 | 6;
  connected: boolean;
  backend: string | null;
  peer: string | null;
}

describe('dual-stack e2e', () => {
  beforeAll(async () => {
    await tcplane(['lab', 'down']);
    await cli('lab', 'up', '-f', LAB);
  });
  afterAll(async () => {
    await tcplane(['lab', 'down']);
  });

  it('dual-stack e2e - every pod has both families; lab probe tries each pair in each, and --families narrows it', async () => {
    const eps = JSON.parse((await cli('get', 'endpoints', '-o', 'json')).stdout) as { namespace: string; name: string; ips: string[] }[];
    expect(Object.fromEntries(eps.map((e) => [`${e.namespace}/${e.name}`, e.ips]))).toEqual(Object.fromEntries(plan.pods.map((p) => [p.key, p.ips])));
    const nodes = JSON.parse((await cli('get', 'nodes', '-o', 'json')).stdout) as { name: string; podCIDRs: string[]; addresses: string[] }[];
    for (const n of plan.nodes) {
      const got = nodes.find((x) => x.name === n.name)!;
      expect(got.podCIDRs).toEqual(n.podCIDRs);
      expect(got.addresses).toEqual(expect.arrayContaining(n.underlayIPs));
    }
    const rows = await probe();
    // 3 pods × 3 pods × 2 ports × 2 families.
    expect(rows.length).toBe(36);
    expect(rows.filter((r) => r.family === 6).length).toBe(18);
    expect(rows.filter((r) => !r.connected)).toEqual([]);
    const only6 = await probe('--families', '6');
    expect(only6.map((r) => `${r.from} ${r.to} ${r.port}/${r.protocol}`)).toEqual(rows.filter((r) => r.family === 6).map((r) => `${r.from} ${r.to} ${r.port}/${r.protocol}`));
    expect(new Set((await probe('--families', '4')).map((r) => r.family))).toEqual(new Set([4]));
  });

  it('dual-stack e2e - WHOAMI over IPv6 names the pod and the IPv6 address it saw the connection from', async () => {
    const [tcp, udp] = await probeFrom('x/a', [
      { to: 'x/b', ip: ips('x/b')[1]!, port: 80, protocol: 'TCP', whoami: true },
      { to: 'x/b', ip: ips('x/b')[1]!, port: 53, protocol: 'UDP', whoami: true },
    ]);
    for (const r of [tcp!, udp!]) {
      expect(r).toMatchObject({ connected: true, backend: 'x/b' });
      expect(r.peer).toMatch(new RegExp(`^\\[${ips('x/a')[1]!.replaceAll('.', '\\.')}\\]:\\d+$`));
    }
  });

  it("dual-stack e2e - IPv6 packets for another node's pods leave by the uplink from tc (lib/forward.h), not through the nodes' forwarding", async () => {
    const state = await readLabState();
    // IPv6 datagrams each node's stack forwarded (Ip6OutForwDatagrams of its namespace).
    const forwarded = () =>
      Promise.all(
        state.nodes.map(async (n) => {
          const { stdout } = await run('nsenter', [`--net=/run/netns/${n.netns}`, '--', 'cat', '/proc/net/snmp6']);
          return Number(/^Ip6OutForwDatagrams\s+(\d+)$/m.exec(stdout)![1]);
        }),
      );
    // Across nodes only (x/a on n1, x/b and x/c on n2): two pods of one node reach each
    // other through its stack, as before.
    const to = (pod: string): ProbeTarget[] => [
      { to: pod, ip: ips(pod)[1]!, port: 80, protocol: 'TCP' },
      { to: pod, ip: ips(pod)[1]!, port: 53, protocol: 'UDP' },
    ];
    const before = await forwarded();
    const rows = [];
    for (let i = 0; i < 3; i++) rows.push(...(await probeFrom('x/a', [...to('x/b'), ...to('x/c')])), ...(await probeFrom('x/b', to('x/a'))), ...(await probeFrom('x/c', to('x/a'))));
    const after = await forwarded();
    expect(rows.length).toBe(24);
    expect(rows.filter((r) => !r.connected)).toEqual([]);
    // Through the stack each of those would be forwarded by both nodes (a TCP probe takes
    // several datagrams each way, a UDP one at least one): well over 24 on each.
    for (const [i, n] of state.nodes.entries()) expect(after[i]! - before[i]!, `IPv6 datagrams ${n.name}'s stack forwarded`).toBeLessThan(8);
  });

  it('dual-stack e2e - an IPv6 datagram larger than the MTU crosses nodes as fragments, there and back', async () => {
    for (const { index } of FAMILIES) {
      const r = await cli('lab', 'exec', 'x/a', '--', process.execPath, UDP_ONCE, ips('x/b')[index]!, '53', '3000');
      expect(JSON.parse(r.stdout), `family index ${index}`).toEqual({ size: 3000, echoed: 3000 });
    }
  });

  it('dual-stack e2e - a PreferDualStack service gets a ClusterIP per family and answers in both, from pods and from outside (node ports, external IPs)', async () => {
    const [svc] = JSON.parse((await cli('get', 'services', '-o', 'json')).stdout) as { clusterIPs: string[]; ipFamilies: string[]; backends: { pod: string; ip: string; port: number }[] }[];
    expect(svc!.ipFamilies).toEqual(['IPv4', 'IPv6']);
    // From the lab's ranges: 10.244.240.0/20 and fd00:10:96::/112.
    expect(Number(svc!.clusterIPs[0]!.split('.')[2]), svc!.clusterIPs[0]).toBeGreaterThanOrEqual(240);
    expect(svc!.clusterIPs[0]).toMatch(/^10\.244\./);
    expect(svc!.clusterIPs[1]).toMatch(/^fd00:10:96::/);
    // A backend row per pod, port and family.
    expect(svc!.backends.filter((b) => b.port === 80).map((b) => `${b.pod} ${b.ip}`).sort()).toEqual(
      ['x/b', 'x/c'].flatMap((p) => ips(p).map((ip) => `${p} ${ip}`)).sort(),
    );
    const rows = JSON.parse((await cli('lab', 'probe', '--to-service', '--json', '--timeout-ms', '700')).stdout) as ServiceRow[];
    expect(rows.filter((r) => !r.connected)).toEqual([]);
    const kinds = (family: 4 | 6) => ({
      clusterIPs: rows.filter((r) => r.family === family && svc!.clusterIPs.includes(r.address)).length,
      nodePorts: rows.filter((r) => r.family === family && r.port >= 30000).length,
      external: rows.filter((r) => r.family === family && r.from === 'outside' && r.port < 30000).length,
    });
    // 3 pods × 2 ports to the ClusterIP; the client: 2 nodes × 2 node ports, one external IP × 2 ports.
    expect(kinds(4)).toEqual({ clusterIPs: 6, nodePorts: 4, external: 2 });
    expect(kinds(6)).toEqual({ clusterIPs: 6, nodePorts: 4, external: 2 });
    for (const r of rows) {
      expect(['x/b', 'x/c'], `${r.from} → ${r.address}:${r.port}`).toContain(r.backend);
      // The backend saw an address of the row's family (the client's, a node's after SNAT, or the ClusterIP's for hairpin).
      expect(r.peer!.startsWith('['), `${r.from} → ${r.address}:${r.port} seen from ${r.peer}`).toBe(r.family === 6);
    }
    // Through n1 (its node ports; the external IPs, routed to n1) the backends on n2 see n1's address of the row's family (SNAT).
    const n1 = plan.nodes[0]!.underlayIPs;
    for (const r of rows.filter((x) => x.from === 'outside' && !plan.nodes[1]!.underlayIPs.includes(x.address))) {
      expect(r.peer, `${r.address}:${r.port}`).toMatch(r.family === 6 ? new RegExp(`^\\[${n1[1]}\\]:`) : new RegExp(`^${n1[0]!.replaceAll('.', '\\.')}:`));
    }
    // Through n2's own address the client is seen as itself: n2 holds both backends (no SNAT).
    for (const r of rows.filter((x) => x.from === 'outside' && plan.nodes[1]!.underlayIPs.includes(x.address))) {
      expect(r.peer).toMatch(r.family === 6 ? /^\[fd00:10:250::200\]:/ : /^10\.250\.0\.200:/);
    }
  });

  it('dual-stack e2e - a policy change cuts established IPv6 connections at their next packets: a TCP stream into the pod, a UDP flow out of it', async () => {
    const control = join(tmpdir(), `tp-dual-cut-${process.pid}`);
    const file = join(tmpdir(), `tp-dual-cut-${process.pid}.yaml`);
    writeFileSync(file, A_NOTHING);
    try {
      const [tcp, udp] = await flowsAcross(control, { from: 'x/c', ip: ips('x/a')[1]!, port: 80 }, { from: 'x/a', ip: ips('x/b')[1]!, port: 53 }, () =>
        cli('apply', '-f', file, '--wait'),
      );
      expectCut(tcp, udp);
    } finally {
      await tcplane(['delete', '-f', file, '--ignore-not-found', '--wait']);
      rmSync(file, { force: true });
    }
  });

  it('dual-stack e2e - egress to a ClusterIP of either family is judged against the backend it goes to', async () => {
    const [svc] = JSON.parse((await cli('get', 'services', '-o', 'json')).stdout) as { clusterIPs: string[] }[];
    const targets = (ip: string): ProbeTarget[] => Array.from({ length: 16 }, () => ({ to: 'svc:x/web', ip, port: 80, protocol: 'TCP' as const, whoami: true }));
    await withPolicy('egress-svc', A_TO_B, async () => {
      for (const vip of svc!.clusterIPs) {
        const rows = await probeFrom('x/a', targets(vip));
        // Each new connection picks x/b or x/c (fresh source ports); only those sent to x/b may pass.
        expect(rows.filter((r) => r.connected).map((r) => r.backend).every((b) => b === 'x/b'), vip).toBe(true);
        expect(rows.some((r) => r.connected), `${vip}: some connection went to x/b`).toBe(true);
        expect(rows.some((r) => !r.connected && r.reason === 'timeout'), `${vip}: some connection went to x/c and dropped`).toBe(true);
      }
    });
  });

  it('dual-stack e2e - an isolated pod gets its replies, neighbour discovery and the ICMP(v6) errors its connections earn, in both families', async () => {
    // Without policy: the port nobody serves refuses (ICMP / ICMPv6 port unreachable).
    expect((await probeFrom('x/a', udpTargets())).map(outcome)).toEqual(['connected', 'refused', 'refused', 'connected', 'refused', 'refused']);
    const file = join(tmpdir(), `tp-dual-${process.pid}.yaml`);
    writeFileSync(file, ISOLATE_A);
    try {
      await cli('apply', '-f', file, '--wait');
      // Replies pass a's ingress isolation; b's port unreachable is an error about a's own
      // connection, so it passes as related; x/c is out of a's egress: dropped, silent.
      expect((await probeFrom('x/a', udpTargets())).map(outcome)).toEqual(['connected', 'refused', 'timeout', 'connected', 'refused', 'timeout']);
      const rows = await probe();
      const toA = rows.filter((r) => r.to === 'x/a' && r.from !== 'x/a');
      expect(toA.length).toBe(8);
      expect(toA.filter((r) => r.connected)).toEqual([]);
      const fromA = rows.filter((r) => r.from === 'x/a' && r.to !== 'x/a' && r.connected).map((r) => `${r.to} ${r.port}/${r.protocol} IPv${r.family}`);
      expect(fromA.sort()).toEqual(['x/b 53/UDP IPv4', 'x/b 53/UDP IPv6', 'x/b 80/TCP IPv4', 'x/b 80/TCP IPv6']);
    } finally {
      await cli('delete', '-f', file, '--wait');
      rmSync(file, { force: true });
    }
  });
});
