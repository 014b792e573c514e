// `tcplane observe` end to end, in labs/services.yaml (three nodes, clients in x, servers
// in y, the ClusterIP service y/web): a connection a policy denies appears with the
// policy and rule that denied it — a default deny names the NetworkPolicy isolating the
// pod, an Admin deny its rule's name, a denied client through a service its service and
// backend — allowed connections appear as samples with the rule that allowed them, the
// filters select, and -f follows new events. Everything through the CLI, as a user runs
// it. Needs root and `make build`.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentMetricsAddress, startAgent } from '../../src/lab/agents.js';
import { isAlive } from '../../src/lab/procs.js';
import { agentLog } from '../../src/lab/topology.js';
import { readLabState } from '../../src/lab/state.js';
import type { Flow } from '../../src/store/flows.js';
import { tcplane } from '../helpers/cli.js';
import { cli } from '../helpers/matrix-lab.js';
import { CLI, ROOT } from '../helpers/paths.js';

const LAB = 'labs/services.yaml';
const work = join(tmpdir(), `tp-observe-${process.pid}`);

const POLICIES = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-isolated, namespace: y}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: solo-from-a, namespace: y}
spec:
  podSelector: {matchLabels: {app: solo}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {who: a}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-sends-nothing, namespace: x}
spec:
  podSelector: {matchLabels: {who: b}}
  policyTypes: [Egress]
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: guard-solo}
spec:
  tier: Admin
  priority: 10
  subject: {pods: {namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {app: solo}}}}
  ingress:
    - {name: no-udp-to-solo, action: Deny, from: [{namespaces: {}}], protocols: [{udp: {destinationPort: {number: 8080}}}]}
`;

/** One TCP connection attempt from a lab pod (a Node one-liner in its namespace): true when it connected. */
async function connect(from: string, ip: string, port: number): Promise<boolean> {
  const js = `const s=require('net').connect(${port},'${ip}');s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(2),1500)`;
  return (await tcplane(['lab', 'exec', from, '--', process.execPath, '-e', js])).code === 0;
}

/** One UDP datagram from a lab pod. */
async function sendUdp(from: string, ip: string, port: number): Promise<void> {
  const js = `const s=require('dgram').createSocket('udp4');s.send('x',${port},'${ip}',()=>s.close())`;
  await cli('lab', 'exec', from, '--', process.execPath, '-e', js);
}

async function observe(...args: string[]): Promise<Flow[]> {
  const r = await cli('observe', '-o', 'json', ...args);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Flow);
}

let ip: Record<string, string>;
let webIP: string;

describe('observe e2e', () => {
  beforeAll(async () => {
    await tcplane(['lab', 'down']);
    await cli('lab', 'up', '-f', LAB);
    const endpoints = JSON.parse((await cli('get', 'endpoints', '-o', 'json')).stdout) as { namespace: string; name: string; ips: string[] }[];
    ip = Object.fromEntries(endpoints.map((e) => [`${e.namespace}/${e.name}`, e.ips[0]!]));
    const services = JSON.parse((await cli('get', 'services', '-o', 'json')).stdout) as { namespace: string; name: string; clusterIPs: string[] }[];
    webIP = services.find((s) => s.namespace === 'y' && s.name === 'web')!.clusterIPs[0]!;
    writeFileSync(join(mkWork(), 'policies.yaml'), POLICIES);
    await cli('apply', '-f', join(work, 'policies.yaml'), '--wait');
  }, 180_000);
  afterAll(async () => {
    await tcplane(['lab', 'down']);
    rmSync(work, { recursive: true, force: true });
  });

  it('observe e2e - a default deny appears dropped, on the node of the pod, naming the NetworkPolicy that isolates it', async () => {
    expect(await connect('x/client-a', ip['y/db']!, 5432)).toBe(false);
    const flows = await observe('--to-pod', 'y/db', '--verdict', 'dropped', '--last', '50');
    const f = flows.find((x) => x.source.pod === 'client-a');
    expect(f, JSON.stringify(flows)).toBeDefined();
    expect(f).toMatchObject({
      node: 'n2',
      verdict: 'dropped',
      reason: 'drop_policy_default',
      direction: 'ingress',
      protocol: 'TCP',
      family: 4,
      source: { namespace: 'x', pod: 'client-a', ip: ip['x/client-a'] },
      destination: { namespace: 'y', pod: 'db', ip: ip['y/db'], port: 5432 },
      service: null,
      policies: [{ kind: 'NetworkPolicy', namespace: 'y', name: 'db-isolated', rule: null }],
    });
    expect(f!.source.identity).toBeGreaterThan(0);
    expect(f!.destination.identity).toBeGreaterThan(0);
    expect(Date.now() - Date.parse(f!.time)).toBeLessThan(10 * 60_000); // a wall-clock time, not boot time
  });

  it('observe e2e - an allowed connection appears as a sample with the rule that allowed it', async () => {
    expect(await connect('x/client-a', ip['y/solo']!, 8080)).toBe(true);
    const flows = await observe('--from-pod', 'x/client-a', '--to-pod', 'y/solo', '--verdict', 'forwarded');
    const ingress = flows.find((f) => f.direction === 'ingress');
    expect(ingress, JSON.stringify(flows)).toMatchObject({
      node: 'n1',
      reason: 'pass_policy',
      sampled: true,
      policies: [{ kind: 'NetworkPolicy', namespace: 'y', name: 'solo-from-a', rule: 'ingress[0]' }],
    });
  });

  it('observe e2e - an Admin deny names its policy and rule; --policy and --protocol select it', async () => {
    await sendUdp('x/client-a', ip['y/solo']!, 8080);
    await expect.poll(async () => (await observe('--policy', 'guard-solo', '--last', '10')).length, { timeout: 5000 }).toBeGreaterThan(0);
    const flows = await observe('--policy', 'guard-solo', '--last', '10');
    for (const f of flows) expect(f.policies.some((p) => p.name === 'guard-solo')).toBe(true);
    expect(flows.at(-1)).toMatchObject({
      verdict: 'dropped',
      reason: 'drop_policy',
      protocol: 'UDP',
      direction: 'ingress',
      destination: { pod: 'solo', port: 8080 },
      policies: [{ kind: 'ClusterNetworkPolicy', namespace: null, name: 'guard-solo', rule: 'no-udp-to-solo' }],
    });
    expect(await observe('--policy', 'guard-solo', '--protocol', 'TCP')).toEqual([]);
  });

  it('observe e2e - per-rule counters: get policies -o wide sums every node\'s, the agents export them to Prometheus', async () => {
    // The earlier cases made a TCP connection allowed by solo-from-a and sent a UDP datagram guard-solo dropped.
    const r = await cli('get', 'policies', '-o', 'wide');
    const count = (re: RegExp) => {
      const m = re.exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      return [Number(m![1]), Number(m![2])];
    };
    const [allowedPackets, allowedBytes] = count(/^NetworkPolicy\s+y\s+solo-from-a\s+ingress\[0\]\s+(\d+)\s+(\d+)$/m);
    expect(allowedPackets).toBeGreaterThanOrEqual(3); // the handshake at least, both ways
    expect(allowedBytes).toBeGreaterThan(allowedPackets * 40);
    const [deniedPackets] = count(/^ClusterNetworkPolicy\s+guard-solo\s+no-udp-to-solo\s+(\d+)\s+(\d+)$/m);
    expect(deniedPackets).toBeGreaterThanOrEqual(1);
    // The policy table's own PACKETS column is the sum of its rules'.
    expect(r.stdout).toMatch(new RegExp(`^NetworkPolicy\\s+y\\s+solo-from-a\\s.*\\s${allowedPackets}\\s+${allowedBytes}$`, 'm'));
    const n1 = (await readLabState()).nodes.find((n) => n.name === 'n1')!;
    const metrics = await (await fetch(`http://${agentMetricsAddress(n1)}/metrics`)).text();
    expect(metrics).toMatch(/^tcplane_policy_rule_packets_total\{kind="ClusterNetworkPolicy",namespace="",policy="guard-solo",rule="no-udp-to-solo"\} [1-9]/m);
    expect(metrics).toMatch(/^tcplane_verdict_events_total\{outcome="emitted"\} [1-9]/m);
  });

  it('observe e2e - a denied client through a service: its service, the backend it was sent to, the policy that denied it', async () => {
    expect(await connect('x/client-b', webIP, 80)).toBe(false);
    // --port matches the ports after translation (the backend's), as the destination shows.
    const flows = await observe('--from-pod', 'x/client-b', '--verdict', 'dropped', '--last', '5');
    const f = flows.filter((x) => x.service !== null).at(-1);
    expect(f, JSON.stringify(flows)).toMatchObject({
      node: 'n2',
      direction: 'egress',
      reason: 'drop_policy_default',
      service: 'y/web',
      source: { pod: 'client-b' },
      destination: { namespace: 'y' },
      policies: [{ kind: 'NetworkPolicy', namespace: 'x', name: 'b-sends-nothing', rule: null }],
    });
    // The destination is the backend chosen, not the ClusterIP.
    expect(f!.destination.pod).toMatch(/^web-[123]$/);
    expect(f!.destination.ip).toBe(ip[`y/${f!.destination.pod}`]);
    expect(f!.destination.port).not.toBe(80);
    expect(await observe('--from-pod', 'x/client-b', '--port', String(f!.destination.port), '--last', '1')).toHaveLength(1);
  });

  it('observe e2e - filters: every row matches, and a filter that matches nothing prints nothing', async () => {
    const byNs = await observe('--namespace', 'y', '--last', '100');
    expect(byNs.length).toBeGreaterThan(0);
    for (const f of byNs) expect([f.source.namespace, f.destination.namespace]).toContain('y');
    const byNode = await observe('--node', 'n1', '--last', '100');
    for (const f of byNode) expect(f.node).toBe('n1');
    expect(await observe('--pod', 'y/db', '--protocol', 'UDP')).toEqual([]);
    const r = await tcplane(['observe', '--verdict', 'maybe']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--verdict "maybe": one of forwarded, dropped, rejected, audit/);
  });

  it('observe e2e - audit mode per policy: what it would drop connects, and is reported as audit naming it', async () => {
    const file = join(work, 'web-audit.yaml');
    writeFileSync(
      file,
      `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-audit, namespace: y, annotations: {tcplane.io/audit: "true"}}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`,
    );
    await cli('apply', '-f', file, '--wait');
    try {
      expect(await connect('x/client-a', ip['y/web-1']!, 8080)).toBe(true);
      const flows = await observe('--verdict', 'audit', '--to-pod', 'y/web-1', '--last', '5');
      expect(flows.at(-1), JSON.stringify(flows)).toMatchObject({
        node: 'n1',
        verdict: 'audit',
        reason: 'audit_policy_default',
        direction: 'ingress',
        source: { pod: 'client-a' },
        policies: [{ kind: 'NetworkPolicy', namespace: 'y', name: 'web-audit', rule: null }],
      });
    } finally {
      await cli('delete', '-f', file, '--wait');
    }
  });

  it('observe e2e - audit mode per namespace: a labelled namespace audits its pods\' policies, and enforces them again without the label', async () => {
    await cli('lab', 'label', 'namespace', 'y', 'tcplane.io/audit=true');
    try {
      await expect.poll(() => connect('x/client-a', ip['y/db']!, 5432), { timeout: 10_000 }).toBe(true);
      const flows = await observe('--verdict', 'audit', '--to-pod', 'y/db', '--last', '1');
      expect(flows[0], JSON.stringify(flows)).toMatchObject({ reason: 'audit_policy_default', policies: [{ name: 'db-isolated' }] });
    } finally {
      await cli('lab', 'label', 'namespace', 'y', 'tcplane.io/audit-');
    }
    await expect.poll(() => connect('x/client-a', ip['y/db']!, 5432), { timeout: 10_000 }).toBe(false);
  });

  it('observe e2e - the line form says who, what, where and which policy', async () => {
    const r = await cli('observe', '--to-pod', 'y/db', '--last', '1');
    expect(r.stdout.trim()).toMatch(/ n2 {2}DROPPED {2}x\/client-a [\d.]+:\d+ -> y\/db [\d.]+:5432 {2}TCP {2}ingress {2}drop_policy_default {2}by NetworkPolicy y\/db-isolated$/);
  });

  it('observe e2e - -f follows: a drop made after it started arrives on its stream', async () => {
    const child = spawn(process.execPath, [CLI, 'observe', '-f', '-o', 'json', '--to-pod', 'y/db'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      await new Promise((r) => setTimeout(r, 1500)); // subscribed
      expect(out).toBe(''); // -f alone prints no history
      expect(await connect('x/client-b', ip['y/db']!, 5432)).toBe(false);
      await expect.poll(() => out.split('\n').filter((l) => l.includes('"client-b"')).length, { timeout: 5000 }).toBeGreaterThan(0);
    } finally {
      child.kill('SIGTERM');
    }
    // client-b's own egress policy drops it first, on its node: b-sends-nothing decides.
    const f = JSON.parse(out.split('\n').find((l) => l.includes('"client-b"'))!) as Flow;
    expect(f).toMatchObject({ verdict: 'dropped', direction: 'egress', destination: { pod: 'db' }, policies: [{ name: 'b-sends-nothing' }] });
  });

  it('observe e2e - a full policy map fails closed: the endpoint that does not fit admits nothing, and the log, the metrics, get nodes and apply --wait say so', async () => {
    const state = await readLabState();
    const n1 = state.nodes.find((n) => n.name === 'n1')!;
    const old = state.processes.find((p) => p.role === 'agent' && p.name === 'n1')!;
    const metrics = async () => (await fetch(`http://${agentMetricsAddress(n1)}/metrics`).catch(() => null))?.text() ?? '';
    const held = Number(/^tcplane_map_entries\{map="tp_policy_v1"\} (\d+)/m.exec(await metrics())![1]);
    // n1's agent again, with room for 4 more policy entries than n1 holds now.
    process.kill(old.pid, 'SIGTERM');
    await expect.poll(() => isAlive(old.pid), { timeout: 10_000 }).toBe(false);
    // And a tight event budget (5 a second per pod), to see what it holds back said.
    let small: { pid: number } | undefined = await startAgent(n1, state.natsUrl, ['--policy-map-entries', String(held + 4), '--event-rate', '5']);
    const file = join(work, 'solo-many-ports.yaml');
    const ports = Array.from({ length: 20 }, (_, i) => `{port: ${9100 + i * 7}}`).join(', ');
    writeFileSync(file, `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: solo-many-ports, namespace: y}\nspec:\n  podSelector: {matchLabels: {app: solo}}\n  ingress: [{from: [{namespaceSelector: {}}], ports: [${ports}]}]\n`);
    try {
      await expect.poll(async () => /^tcplane_reconcile_total [1-9]/m.test(await metrics()), { timeout: 20_000 }).toBe(true);
      expect(await connect('x/client-a', ip['y/solo']!, 8080)).toBe(true); // fits so far

      // 20 more ports for y/solo: its entries no longer fit, so y/solo, whole, fails closed.
      const applied = await tcplane(['apply', '-f', file, '--wait']);
      expect(applied.code, applied.stdout + applied.stderr).toBe(1);
      console.log(`apply --wait with y/solo over the map: ${applied.stdout}${applied.stderr}`);
      expect(applied.stderr).toMatch(/endpoints failed closed, admitting nothing until their policy entries fit: n1: y\/solo \(needs \d+ policy entries, policy map full of \d+\)/);
      const nodes = (await cli('get', 'nodes')).stdout.split('\n');
      expect(nodes.find((l) => l.startsWith('n1 '))).toMatch(/\sy\/solo\s/);
      expect(nodes.find((l) => l.startsWith('n2 '))).not.toMatch(/y\/solo/);
      expect(await metrics()).toMatch(/^tcplane_endpoints_failed_closed 1$/m);
      expect(readFileSync(agentLog('n1'), 'utf8')).toMatch(/"endpoint":"y\/solo".*endpoint failed closed/);
      expect(await connect('x/client-a', ip['y/solo']!, 8080)).toBe(false); // closed: what was allowed is not
      const [f] = await observe('--to-pod', 'y/solo', '--verdict', 'dropped', '--last', '1');
      expect(f).toMatchObject({ node: 'n1', reason: 'drop_fail_closed', source: { pod: 'client-a' } });
      expect(await connect('x/client-a', ip['y/web-1']!, 8080)).toBe(true); // n1's other pods fit: as before
      // 20 datagrams at once into closed y/solo: past its budget, held back and said so.
      const burst = `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>s.send('x',8080,'${ip['y/solo']}',()=>++n<20?go():s.close());go()`;
      await cli('lab', 'exec', 'x/client-a', '--', process.execPath, '-e', burst);
      const noted = await cli('observe', '--to-pod', 'y/solo', '--last', '1');
      expect(noted.stderr).toMatch(/^note: node n1: \d+ events lost to a full ring buffer, [1-9]\d* held back by the rate limit/m);
      expect(await metrics()).toMatch(/^tcplane_verdict_events_total\{outcome="suppressed"\} [1-9]/m);

      await cli('delete', '-f', file, '--wait');
      expect(await connect('x/client-a', ip['y/solo']!, 8080)).toBe(true);
      expect(await metrics()).toMatch(/^tcplane_endpoints_failed_closed 0$/m);
    } finally {
      await tcplane(['delete', '-f', file, '--ignore-not-found']);
      if (small && (await isAlive(small.pid))) process.kill(small.pid, 'SIGTERM');
      if (small) await expect.poll(() => isAlive(small!.pid), { timeout: 10_000 }).toBe(false);
      small = undefined;
      await startAgent(n1, state.natsUrl);
    }
  });
});

function mkWork(): string {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  return work;
}
