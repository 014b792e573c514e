// Services end to end: labs/services.yaml (three nodes, one agent each, one outside
// client), services applied by `lab up` through `tcplane apply`, real TCP and UDP
// connections through ClusterIPs, NodePorts, load balancer and external IPs, checked
// through the CLI as a user would (`lab probe --to-service`, `get services`, `lab pod …`)
// and with WHOAMI answers, which say which backend answered and what address it saw.
// Needs root and `make build`: creates tp-* namespaces, links, processes and pins, all
// removed in afterAll (also when a test fails).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentMetricsAddress, startAgent } from '../../src/lab/agents.js';
import { isAlive } from '../../src/lab/procs.js';
import { parseLabSpec } from '../../src/lab/spec.js';
import { readLabState, type LabState } from '../../src/lab/state.js';
import { run } from '../../src/lab/exec.js';
import type { ServiceProbeRow } from '../../src/lab/service-probe.js';
import type { ServiceJson } from '../../src/cli/get.js';
import { waitForEnforcement } from '../../src/cli/apply.js';
import { Store } from '../../src/store/store.js';
import { tcplane, type CliResult } from '../helpers/cli.js';
import { ROOT } from '../helpers/paths.js';

const LAB = 'labs/services.yaml';
const MANY = `${ROOT}test/e2e/fixtures/whoami-many.mjs`;
const FLOW = `${ROOT}test/e2e/fixtures/service-flow.mjs`;
const plan = parseLabSpec(readFileSync(`${ROOT}${LAB}`, 'utf8'), LAB);
const podIp = (key: string) => plan.pods.find((p) => p.key === key)!.ip;
const podNode = (key: string) => plan.pods.find((p) => p.key === key)!.node;
const nodeIp = (name: string) => plan.nodes.find((n) => n.name === name)!.underlayIP;
const CLIENT_IP = plan.clients[0]!.ip;
const WEB = ['y/web-1', 'y/web-2', 'y/web-3'];
const work = mkdtempSync(join(tmpdir(), 'tp-svc-e2e-'));

async function ok(args: string[], timeoutMs?: number): Promise<CliResult> {
  const r = await tcplane(args, { timeoutMs });
  expect(r.code, `tcplane ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

let services = new Map<string, ServiceJson>();
async function readServices(): Promise<Map<string, ServiceJson>> {
  const list = JSON.parse((await ok(['get', 'services', '-o', 'json'])).stdout) as ServiceJson[];
  return new Map(list.map((s) => [`${s.namespace}/${s.name}`, s]));
}
const clusterIP = (svc: string) => services.get(svc)!.clusterIPs[0]!;

/** Waits until every agent reports enforced what the store holds now (pods and services). */
async function agentsCaughtUp(): Promise<void> {
  const store = await Store.connect((await readLabState()).natsUrl, { name: 'tp-services-test' });
  try {
    const targets = { pods: await store.lastRevision('pods'), services: await store.lastRevision('services') };
    await waitForEnforcement(store, targets, { timeoutMs: 20_000 });
  } finally {
    await store.close();
  }
}

async function probeServices(extra: string[] = []): Promise<ServiceProbeRow[]> {
  const r = await ok(['lab', 'probe', '--to-service', '--json', '--timeout-ms', '700', ...extra]);
  return JSON.parse(r.stdout) as ServiceProbeRow[];
}

interface Answer {
  sport: number | null;
  backend: string | null;
  peer: string | null;
  error: string | null;
}
/**
 * `count` WHOAMI exchanges from `from` (a pod NS/POD or a client) to host:port, each on its
 * own socket (whoami-many.mjs). `firstPort` fixes the source ports, so two calls send the
 * same flows: keep them below 32768, outside the kernel's ephemeral range, or another
 * socket may hold one of them (EADDRINUSE).
 */
async function whoamiMany(from: string, proto: 'tcp' | 'udp', host: string, port: number, count: number, firstPort?: number): Promise<Answer[]> {
  const args = [MANY, proto, host, String(port), String(count), ...(firstPort === undefined ? [] : [String(firstPort)])];
  const r = await ok(['lab', 'exec', from, '--', process.execPath, ...args]);
  return JSON.parse(r.stdout) as Answer[];
}
const counts = (xs: Answer[]) => xs.reduce((m, a) => m.set(a.backend ?? `error:${a.error}`, (m.get(a.backend ?? `error:${a.error}`) ?? 0) + 1), new Map<string, number>());

interface Flow {
  backends: { backend: string; first: number; last: number; count: number }[];
  sent: number;
  answered: number;
  error: string | null;
}
/**
 * A long-lived flow to a service (service-flow.mjs): `backend` is the one that answered
 * first; `stop()` ends it and returns what it saw.
 */
async function startFlow(from: string, proto: 'tcp' | 'udp', host: string, port: number): Promise<{ backend: string; stop: () => Promise<Flow> }> {
  const control = join(work, `flow-${proto}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const running = tcplane(['lab', 'exec', from, '--', process.execPath, FLOW, proto, host, String(port), control]);
  let stopped: Promise<Flow> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      writeFileSync(`${control}.stop`, '');
      const r = await running;
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Flow;
    })());
  try {
    await until(() => existsSync(`${control}.ready`), `the ${proto} flow from ${from} is answered`);
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return { backend: readFileSync(`${control}.ready`, 'utf8'), stop };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > limitMs) throw new Error(`gave up after ${limitMs} ms waiting until ${what}`);
    await sleep(50);
  }
}

/** Counters an agent serves, as `name{labels}` → value. */
async function scrape(node: string): Promise<Map<string, number>> {
  const n = (await readLabState()).nodes.find((x) => x.name === node)!;
  const text = await (await fetch(`http://${agentMetricsAddress(n)}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  return new Map(lines.map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
}

/** The backends `get services` lists for a service, as pod → state. */
async function backendStates(svc: string): Promise<Record<string, string>> {
  const s = (await readServices()).get(svc)!;
  return Object.fromEntries(s.backends.filter((b) => b.servicePort === s.ports[0]!.port).map((b) => [b.pod, b.state]));
}

function writeFixture(name: string, text: string): string {
  const f = join(work, name);
  writeFileSync(f, text);
  return f;
}

describe('services e2e', () => {
  beforeAll(async () => {
    if (!existsSync(`${ROOT}dist/src/cli/main.js`)) throw new Error('run `make build` first');
    await tcplane(['lab', 'down']);
    await ok(['lab', 'up', '-f', LAB], 120_000);
    services = await readServices();
  });
  afterAll(async () => {
    await tcplane(['lab', 'down']);
    rmSync(work, { recursive: true, force: true });
  });

  it('services e2e - get services -o json shows each service as DESIGN.md says, with its backends', async () => {
    const web = services.get('y/web')!;
    expect(Object.keys(web)).toEqual(expect.arrayContaining(['namespace', 'name', 'type', 'clusterIPs', 'sessionAffinity', 'externalTrafficPolicy', 'internalTrafficPolicy', 'healthCheckNodePort', 'ports', 'backends']));
    expect(web).toMatchObject({ namespace: 'y', name: 'web', type: 'ClusterIP', sessionAffinity: 'None', externalTrafficPolicy: null, internalTrafficPolicy: 'Cluster', healthCheckNodePort: null });
    expect(web.clusterIPs).toHaveLength(1);
    expect(web.clusterIPs[0]).toMatch(/^10\.244\.(24\d|25[0-5])\.\d+$/); // the lab's service range, 10.244.240.0/20
    expect(web.ports).toEqual([
      { name: 'http', port: 80, protocol: 'TCP', targetPort: 'http', nodePort: null },
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns', nodePort: null },
    ]);
    // Named ports resolve per pod: web-3 serves "http" on 8081.
    expect(web.backends.filter((b) => b.servicePort === 80)).toEqual(
      WEB.map((pod) => ({ pod, node: podNode(pod), ip: podIp(pod), port: pod === 'y/web-3' ? 8081 : 8080, protocol: 'TCP', servicePort: 80, state: 'ready' })),
    );
    const np = services.get('y/web-np')!;
    expect(np.type).toBe('NodePort');
    expect(np.externalTrafficPolicy).toBe('Cluster');
    expect(np.ports.map((p) => p.nodePort)).toEqual([30080, 30053]);
    const lb = services.get('y/db-lb')!;
    expect(lb.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(lb.ports[0]!.nodePort).toBeGreaterThanOrEqual(30000);
    expect(services.get('y/empty')!.backends).toEqual([]);
    const table = (await ok(['get', 'services'])).stdout;
    expect(table).toMatch(/^y\s+web\s+ClusterIP\s+10\.244\.\S+\s+<none>\s+80\/TCP,53\/UDP\s+6 ready$/m);
    expect((await ok(['get', 'services', '-o', 'wide'])).stdout).toMatch(/y\/web-3@n3=10\.244\.3\.\d+:8081\/TCP\(ready\)/);
  });

  it('services e2e - every pod reaches a ClusterIP over TCP and UDP, across nodes; backends see the client, the client only the service', async () => {
    const rows = (await probeServices()).filter((r) => r.to === 'svc:y/web');
    expect(rows).toHaveLength(plan.pods.length * 2);
    for (const r of rows) {
      expect(r, `${r.from} → ${r.to} ${r.port}/${r.protocol}`).toMatchObject({ connected: true, address: clusterIP('y/web'), family: 4 });
      expect(WEB).toContain(r.backend);
      // DNAT keeps the client's address; a pod reaching itself sees the service address instead.
      const peerIp = r.peer!.split(':')[0];
      expect(peerIp, `${r.from} via ${r.backend}`).toBe(r.backend === r.from ? clusterIP('y/web') : podIp(r.from));
    }
  });

  it('services e2e - new connections spread over every backend, TCP and UDP', async () => {
    for (const proto of ['tcp', 'udp'] as const) {
      const answers = await whoamiMany('x/client-a', proto, clusterIP('y/web'), proto === 'tcp' ? 80 : 53, 90);
      const c = counts(answers);
      console.log(`${proto}: 90 connections from x/client-a to y/web: ${JSON.stringify(Object.fromEntries(c))}`);
      expect([...c.keys()].sort()).toEqual(WEB);
      // Expected 30 each; below 10 has a probability under 1e-5 for a fair spread.
      for (const [b, n] of c) expect(n, b).toBeGreaterThanOrEqual(10);
    }
  });

  it('services e2e - a service without endpoints refuses at once (TCP RST, ICMP port unreachable), counted by reason', async () => {
    const before = await scrape('n1');
    const rows = (await probeServices()).filter((r) => r.to === 'svc:y/empty');
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r, `${r.from} ${r.protocol}`).toMatchObject({ connected: false, reason: 'refused', backend: null, peer: null });
    const after = await scrape('n1');
    const key = 'tcplane_datapath_packets_total{hook="pod",direction="egress",reason="reject_no_backend",verdict="drop"}';
    // n1's pods (x/client-a, y/web-1, y/solo) each tried TCP and UDP at least once.
    expect((after.get(key) ?? 0) - (before.get(key) ?? 0)).toBeGreaterThanOrEqual(6);
  });

  it('services e2e - a pod reaching its own service connects whatever policy isolates it, and sees the service address', async () => {
    const isolate = writeFixture('solo-isolated.yaml', `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: solo-isolated, namespace: y}
spec:
  podSelector: {matchLabels: {app: solo}}
  policyTypes: [Ingress]
  ingress: []
`);
    try {
      for (const phase of ['open', 'isolated']) {
        if (phase === 'isolated') await ok(['apply', '-f', isolate, '--wait']);
        const rows = (await probeServices()).filter((r) => r.to === 'svc:y/solo');
        const self = rows.find((r) => r.from === 'y/solo')!;
        expect(self, phase).toMatchObject({ connected: true, backend: 'y/solo' });
        expect(self.peer!.split(':')[0], `${phase}: the hairpin source`).toBe(clusterIP('y/solo'));
        // Everyone else is judged by y/solo's policy after translation.
        for (const r of rows.filter((x) => x.from !== 'y/solo')) expect(r.connected, `${phase}: ${r.from}`).toBe(phase === 'open');
      }
    } finally {
      await ok(['delete', '-f', isolate, '--wait']);
    }
  });

  it("services e2e - policy judges the backend after translation with the client's own identity: a ClusterIP launders nothing", async () => {
    const onlyA = writeFixture('db-from-a.yaml', `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-a, namespace: y}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {who: a}}}]
      ports: [{protocol: TCP, port: 5432}]
`);
    await ok(['apply', '-f', onlyA, '--wait']);
    try {
      const rows = (await probeServices()).filter((r) => r.to === 'svc:y/db');
      // x/client-a is allowed; y/db reaching its own service is a hairpin, always allowed.
      for (const r of rows) expect(r.connected, r.from).toBe(r.from === 'x/client-a' || r.from === 'y/db');
      expect(rows.find((r) => r.from === 'x/client-b')!.reason).toBe('timeout'); // dropped by policy, not refused
    } finally {
      await ok(['delete', '-f', onlyA, '--wait']);
    }
  });

  it('services e2e - internalTrafficPolicy Local: only pods on a node with a backend reach it; the others are dropped', async () => {
    const rows = (await probeServices()).filter((r) => r.to === 'svc:y/db-node-local');
    for (const r of rows) {
      const local = podNode(r.from) === podNode('y/db');
      expect(r.connected, r.from).toBe(local);
      if (!local) expect(r.reason, r.from).toBe('timeout');
    }
  });

  it('services e2e - NodePort from outside: the client address reaches a local backend, SNAT to the node for another node', async () => {
    for (const n of plan.nodes) {
      for (const [proto, port] of [['tcp', 30080], ['udp', 30053]] as const) {
        const answers = await whoamiMany('outside', proto, n.underlayIP, port, 30);
        expect([...counts(answers).keys()].sort(), `${proto} via ${n.name}`).toEqual(WEB);
        for (const a of answers) {
          const peerIp = a.peer!.split(':')[0];
          expect(peerIp, `${proto} via ${n.name} to ${a.backend}`).toBe(podNode(a.backend!) === n.name ? CLIENT_IP : n.underlayIP);
        }
      }
    }
  });

  it('services e2e - NodePort with externalTrafficPolicy Local: only the node with a backend answers, keeping the client address', async () => {
    const rows = (await probeServices()).filter((r) => r.from === 'outside' && r.to === 'svc:y/db-local');
    expect(rows).toHaveLength(3);
    for (const r of rows) {
      const local = r.address === nodeIp(podNode('y/db'));
      expect(r.connected, r.address).toBe(local);
      if (local) expect(r.peer!.split(':')[0]).toBe(CLIENT_IP);
      else expect(r.reason, r.address).toBe('timeout'); // dropped, not refused (kube-proxy's behaviour)
    }
  });

  it('services e2e - a Local load balancer IP reaches the node whose health check answers 200; others answer 503', async () => {
    const hc = services.get('y/db-lb')!.healthCheckNodePort!;
    for (const n of plan.nodes) {
      const r = await ok(['lab', 'exec', 'outside', '--', process.execPath, '-e', `fetch('http://${n.underlayIP}:${hc}/healthz').then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.json() })))`]);
      const got = JSON.parse(r.stdout) as { status: number; body: unknown };
      const local = n.name === podNode('y/db') ? 1 : 0;
      expect(got, n.name).toEqual({ status: local ? 200 : 503, body: { service: { namespace: 'y', name: 'db-lb' }, localEndpoints: local, serviceProxyHealthy: true } });
    }
    const row = (await probeServices()).find((r) => r.from === 'outside' && r.to === 'svc:y/db-lb' && r.address === '10.250.1.10')!;
    expect(row).toMatchObject({ connected: true, backend: 'y/db' });
    expect(row.peer!.split(':')[0]).toBe(CLIENT_IP);
  });

  it('services e2e - external IPs reach the service from outside and from pods', async () => {
    const rows = (await probeServices()).filter((r) => r.to === 'svc:y/web-ext');
    const outside = rows.find((r) => r.from === 'outside' && r.address === '10.250.1.20')!;
    expect(outside).toMatchObject({ connected: true });
    for (const r of rows.filter((x) => x.from !== 'outside')) expect(r.connected, r.from).toBe(true);
    // From pods, an external IP is short-circuited to the service, as kube-proxy does.
    const fromPod = await whoamiMany('x/client-a', 'tcp', '10.250.1.20', 80, 6);
    for (const a of fromPod) expect(WEB).toContain(a.backend);
  });

  it("services e2e - a pod reaching a NodePort on any node's address reaches the service", async () => {
    for (const n of plan.nodes) {
      const answers = await whoamiMany('x/client-a', 'tcp', n.underlayIP, 30080, 6);
      for (const a of answers) expect(WEB, `via ${n.name}: ${a.error}`).toContain(a.backend);
    }
  });

  it('services e2e - the same flow picks the same backend whichever node the load balancer sends it to', async () => {
    const via = async (node: string) => {
      await ok(['lab', 'exec', 'outside', '--', 'ip', 'route', 'replace', '10.250.1.20/32', 'via', nodeIp(node)]);
      const answers = await whoamiMany('outside', 'tcp', '10.250.1.20', 80, 40, 22000);
      expect(answers.filter((a) => a.backend === null), `exchanges via ${node} without an answer`).toEqual([]);
      return answers.map((a) => a.backend);
    };
    try {
      const first = await via('n1');
      expect(await via('n2')).toEqual(first);
      expect(await via('n3')).toEqual(first);
    } finally {
      await ok(['lab', 'exec', 'outside', '--', 'ip', 'route', 'del', '10.250.1.20/32']);
    }
  });

  it('services e2e - removing one of three backends moves only its flows (Maglev), and adding it back restores them', async () => {
    let failed: Answer[] = [];
    const flows = async () => {
      const answers = await whoamiMany('x/client-a', 'tcp', clusterIP('y/web'), 80, 150, 23000);
      failed = answers.filter((a) => a.backend === null);
      return answers.map((a) => a.backend);
    };
    const before = await flows();
    await ok(['lab', 'pod', 'stop', 'y/web-2']);
    let during: (string | null)[];
    try {
      await until(async () => !(await backendStates('y/web'))['y/web-2'], 'web-2 leaves the service');
      await agentsCaughtUp(); // the store says so at once; the client's node, a few ms later
      during = await flows();
    } finally {
      await ok(['lab', 'pod', 'start', 'y/web-2']);
    }
    const own = before.filter((b) => b === 'y/web-2').length;
    const extra = before.filter((b, i) => b !== 'y/web-2' && b !== during[i]).length;
    console.log(`removing web-2: ${own} of its flows moved, and ${extra} of the other ${150 - own}`);
    // Every flow of web-2 moves...
    before.forEach((b, i) => b === 'y/web-2' && expect(during[i], `flow ${i}`).not.toBe('y/web-2'));
    expect(failed, 'exchanges without an answer while web-2 is gone').toEqual([]);
    // ...and almost no other. Maglev is not perfectly minimal: measured for these three
    // backends over 20,000 seeds (the lab's is random), the extra share of slots that
    // move is 0.5% on average, 2.9% at p99, 7.3% at p99.9, 33% at worst (two backends
    // drawing the same skip); the bound leaves a spurious failure about once in 2,000 runs.
    expect(extra, 'flows of the other backends that moved').toBeLessThanOrEqual(18);
    await until(async () => (await backendStates('y/web'))['y/web-2'] === 'ready', 'web-2 is back');
    await until(async () => JSON.stringify(await flows()) === JSON.stringify(before), 'every flow has its first backend again', 10_000);
  });

  it('services e2e - a UDP client that keeps sending reaches another backend within a second when its backend goes away', async () => {
    const flow = await startFlow('x/client-a', 'udp', clusterIP('y/web'), 53);
    const gone = flow.backend;
    let result: Flow;
    try {
      await sleep(300);
      await ok(['lab', 'pod', 'stop', gone]);
      await sleep(1500);
      result = await flow.stop();
    } finally {
      await flow.stop().catch(() => undefined);
      await ok(['lab', 'pod', 'start', gone]);
    }
    console.log(`UDP flow across removing ${gone}: ${JSON.stringify(result.backends)}`);
    const [first, next] = result.backends;
    expect(first!.backend).toBe(gone); // one socket: pinned to its backend while it serves
    expect(next?.backend, 'it moved').toBeDefined();
    expect(next!.backend).not.toBe(gone);
    // Messages go every 20 ms: a gap of at most 50 is under a second (store and agent included).
    expect(next!.first - first!.last, 'answers lost while moving').toBeLessThanOrEqual(50);
    expect(result.backends.slice(1).every((x) => x.backend !== gone)).toBe(true);
    await until(async () => (await backendStates('y/web'))[gone] === 'ready', `${gone} is back`);
  });

  it('services e2e - an established TCP connection keeps its backend while other backends go and come back', async () => {
    const flow = await startFlow('x/client-b', 'tcp', clusterIP('y/web'), 80);
    const other = WEB.find((b) => b !== flow.backend)!;
    let result: Flow;
    try {
      await sleep(200);
      await ok(['lab', 'pod', 'stop', other]);
      await sleep(300);
      await ok(['lab', 'pod', 'start', other]);
      await sleep(300);
      result = await flow.stop();
    } finally {
      await flow.stop().catch(() => undefined);
    }
    expect(result.error).toBeNull();
    expect(result.backends.map((x) => x.backend)).toEqual([flow.backend]);
    expect(result.answered).toBe(result.sent + 1); // every message echoed, and the WHOAMI line
    await until(async () => (await backendStates('y/web'))[other] === 'ready', `${other} is back`);
  });

  it('services e2e - a terminating backend finishes its connections and takes no new ones; when all terminate, they serve', async () => {
    const flow = await startFlow('x/client-a', 'tcp', clusterIP('y/web'), 80);
    const victim = flow.backend;
    let stopping: Promise<CliResult> | undefined;
    try {
      stopping = tcplane(['lab', 'pod', 'stop', victim, '--grace-seconds', '4']);
      await until(async () => (await backendStates('y/web'))[victim] === 'terminating', `${victim} is terminating`);
      const during = await whoamiMany('x/client-a', 'tcp', clusterIP('y/web'), 80, 45);
      expect(during.every((a) => a.backend !== null && a.backend !== victim), 'no new connection goes to a terminating backend').toBe(true);
      await sleep(300);
      const result = await flow.stop();
      expect(result.error, 'the live connection kept working').toBeNull();
      expect(result.backends.map((x) => x.backend)).toEqual([victim]);
      expect(result.answered).toBe(result.sent + 1);
      expect((await stopping).code).toBe(0);
      expect((await backendStates('y/web'))[victim]).toBeUndefined();
    } finally {
      await flow.stop().catch(() => undefined);
      await stopping?.catch(() => undefined);
      await tcplane(['lab', 'pod', 'start', victim]);
    }
    await until(async () => Object.values(await backendStates('y/web')).filter((st) => st === 'ready').length === 3, 'all three are ready again');

    // Every backend terminating at once: they keep serving new connections until removed.
    const all = WEB.map((b) => tcplane(['lab', 'pod', 'stop', b, '--grace-seconds', '4']));
    try {
      await until(async () => Object.values(await backendStates('y/web')).every((st) => st === 'terminating'), 'every web pod is terminating');
      const during = await whoamiMany('x/client-b', 'tcp', clusterIP('y/web'), 80, 12);
      for (const a of during) expect(WEB, a.error ?? '').toContain(a.backend);
    } finally {
      await Promise.allSettled(all);
      for (const b of WEB) await tcplane(['lab', 'pod', 'start', b]);
    }
    await until(async () => Object.values(await backendStates('y/web')).filter((st) => st === 'ready').length === 3, 'all three are ready again');
  });

  it('services e2e - ClientIP session affinity keeps a client on one backend, also when another backend comes back', async () => {
    const ip = clusterIP('y/sticky');
    const first = counts(await whoamiMany('x/client-a', 'tcp', ip, 82, 30));
    expect([...first.keys()]).toHaveLength(1);
    const [mine] = [...first.keys()];
    const other = WEB.find((b) => b !== mine)!;
    await ok(['lab', 'pod', 'stop', other]);
    await ok(['lab', 'pod', 'start', other]);
    await until(async () => (await backendStates('y/sticky'))[other] === 'ready', `${other} is back`);
    const again = counts(await whoamiMany('x/client-a', 'tcp', ip, 82, 30));
    expect([...again.keys()]).toEqual([mine]);
    // Another client has its own affinity; over both clients a second backend may appear.
    expect([...counts(await whoamiMany('x/client-b', 'tcp', ip, 82, 10)).keys()]).toHaveLength(1);
  });

  it('services e2e - with checksum offload off, translated packets and refusals carry correct checksums', async () => {
    const state: LabState = await readLabState();
    const devices: [string, string][] = [
      ...state.pods.map((p) => [p.netns, 'tp-eth0'] as [string, string]),
      ...state.pods.map((p) => [state.nodes.find((n) => n.name === p.node)!.netns, p.hostIf] as [string, string]),
      ...state.nodes.map((n) => [n.netns, 'tp-eth0'] as [string, string]),
      ...state.clients.map((c) => [c.netns, 'tp-eth0'] as [string, string]),
    ];
    const set = (on: 'on' | 'off') => Promise.all(devices.map(([ns, dev]) => run('nsenter', [`--net=/run/netns/${ns}`, '--', 'ethtool', '-K', dev, 'tx', on])));
    await set('off');
    try {
      // Now every packet carries a full checksum computed by its sender, and the receiver
      // checks it (veth validates nothing while offload is on).
      const rows = await probeServices();
      const byTo = (to: string) => rows.filter((r) => r.to === to);
      for (const r of byTo('svc:y/web')) expect(r.connected, `${r.from} ${r.protocol}`).toBe(true);
      for (const r of byTo('svc:y/empty')) expect(r.reason, `${r.from} ${r.protocol}`).toBe('refused');
      for (const r of byTo('svc:y/web-np').filter((x) => x.from === 'outside')) expect(r.connected, `${r.address} ${r.protocol}`).toBe(true);
      expect(byTo('svc:y/solo').find((r) => r.from === 'y/solo')!.connected).toBe(true);
    } finally {
      await set('on');
    }
  });

  it("services e2e - pods' packets for other nodes' pods leave by the uplink from tc (lib/forward.h), not through the nodes' forwarding", async () => {
    const state = await readLabState();
    const nodeNetns = (name: string) => state.nodes.find((n) => n.name === name)!.netns;
    // IPv4 datagrams the node's stack forwarded (Ip: ForwDatagrams of its namespace).
    const forwarded = async (node: string) => {
      const { stdout } = await run('nsenter', [`--net=/run/netns/${nodeNetns(node)}`, '--', 'cat', '/proc/net/snmp']);
      const [names, values] = stdout.split('\n').filter((l) => l.startsWith('Ip:'));
      return Number(values!.split(/\s+/)[names!.split(/\s+/).indexOf('ForwDatagrams')]);
    };
    const client = 'x/client-a';
    const server = 'y/web-2';
    expect(podNode(client)).not.toBe(podNode(server));
    const nodes = [podNode(client), podNode(server)];
    const before = await Promise.all(nodes.map(forwarded));
    const answers = [
      ...(await whoamiMany(client, 'tcp', podIp(server), 8080, 20)),
      ...(await whoamiMany(client, 'udp', podIp(server), 5353, 20)),
      ...(await whoamiMany(server, 'tcp', podIp(client), 8080, 20)),
    ];
    const after = await Promise.all(nodes.map(forwarded));
    for (const a of answers) expect(a.error).toBeNull();
    expect(answers.every((a) => a.peer !== null)).toBe(true);
    // Through the nodes' forwarding these 60 exchanges would count well over 100 datagrams
    // on each node (a TCP connection takes at least 4 each way); a handful is slack for
    // whatever else the lab's pods send meanwhile.
    for (const [i, node] of nodes.entries()) expect(after[i]! - before[i]!, `datagrams ${node}'s stack forwarded`).toBeLessThan(10);
  });

  it("services e2e - an agent restart keeps a live connection through a service on its backend, and rewrites nothing", async () => {
    const state = await readLabState();
    const n1 = state.nodes.find((n) => n.name === 'n1')!;
    const old = state.processes.find((p) => p.role === 'agent' && p.name === 'n1')!;
    const flow = await startFlow('x/client-a', 'tcp', clusterIP('y/web'), 80);
    let restarted: { pid: number } | undefined;
    try {
      process.kill(old.pid, 'SIGTERM');
      await until(async () => !(await isAlive(old.pid)), "n1's agent exits");
      restarted = await startAgent(n1, state.natsUrl);
      let text = '';
      await until(async () => /^tcplane_reconcile_total [1-9]/m.test((text = (await fetch(`http://${agentMetricsAddress(n1)}/metrics`).catch(() => null).then((r) => r?.text())) ?? '')), 'the new agent reconciles');
      expect(text.match(/^tcplane_map_writes_total\{.*$/gm) ?? []).toEqual([]);
      const result = await flow.stop();
      expect(result.error).toBeNull();
      expect(result.backends).toHaveLength(1);
      expect(result.answered).toBe(result.sent + 1);
    } finally {
      if (!restarted && !(await isAlive(old.pid))) await startAgent(n1, state.natsUrl);
      await flow.stop().catch(() => undefined);
    }
  });

  it('services e2e - apply refuses a taken nodePort, a cluster IP outside the range and an IPv6 service on this single-stack lab, naming file, line and field; nothing is applied', async () => {
    const bad = writeFixture('bad-services.yaml', `apiVersion: v1
kind: Service
metadata: {name: fine, namespace: y}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: taken, namespace: y}
spec:
  type: NodePort
  selector: {app: web}
  ports:
    - port: 80
      nodePort: 30080
---
apiVersion: v1
kind: Service
metadata: {name: outside-range, namespace: y}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{port: 80}]
`);
    const r = await tcplane(['apply', '-f', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}:16: spec.ports[0].nodePort: 30080 is already allocated to service y/web-np`);
    expect(r.stderr).toContain(`${bad}:22: spec.clusterIP: 10.96.0.10 is not in the cluster's IPv4 service range 10.244.240.0/20`);
    expect(r.stderr).toContain('nothing applied');
    expect((await readServices()).has('y/fine')).toBe(false);
    const v6 = writeFixture('v6.yaml', `apiVersion: v1
kind: Service
metadata: {name: six, namespace: y}
spec:
  ipFamilies: [IPv6]
  selector: {app: web}
  ports: [{port: 80}]
`);
    const r6 = await tcplane(['apply', '-f', v6]);
    expect(r6.code).toBe(1);
    expect(r6.stderr).toContain(`${v6}:5: spec.ipFamilies[0]: IPv6 is not configured on this cluster (its service range: 10.244.240.0/20)`);
    expect((await readServices()).has('y/six')).toBe(false);
  });

  it('services e2e - delete removes a service from every node and frees what it held', async () => {
    const f = writeFixture('temp.yaml', `apiVersion: v1
kind: Service
metadata: {name: temp, namespace: y}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30999}]
`);
    await ok(['apply', '-f', f, '--wait']);
    const ip = (await readServices()).get('y/temp')!.clusterIPs[0]!;
    expect(counts(await whoamiMany('x/client-b', 'tcp', ip, 80, 6)).size).toBeGreaterThan(0);
    await ok(['delete', '-f', f, '--wait']);
    expect((await readServices()).has('y/temp')).toBe(false);
    const after = await whoamiMany('x/client-b', 'tcp', ip, 80, 2);
    expect(after.every((a) => a.backend === null)).toBe(true);
    // The node port is free again: another service may take it.
    const g = writeFixture('temp2.yaml', readFileSync(f, 'utf8').replace('name: temp,', 'name: temp2,'));
    await ok(['apply', '-f', g, '--wait']);
    await ok(['delete', '-f', g, '--wait']);
  });
});
