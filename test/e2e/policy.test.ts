// NetworkPolicy end to end: a three-node lab with one agent per node, policies applied
// with the CLI, real TCP and UDP connections probed between every pair of pods.
// Needs root and `make build`: creates tp-* namespaces, links, processes and pins, all
// removed in afterAll (also when a test fails).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentMetricsAddress, startAgent } from '../../src/lab/agents.js';
import { agentLog } from '../../src/lab/topology.js';
import { identityClaim, identityRecord, type IdentityClaim } from '../../src/store/schema.js';
import { Store } from '../../src/store/store.js';
import { labelsDigest } from '../../src/identity/labels.js';
import { isAlive } from '../../src/lab/procs.js';
import { parseLabSpec } from '../../src/lab/spec.js';
import { labNatsUrl, readLabState } from '../../src/lab/state.js';
import { tcplane, type CliResult, type ProbeRow } from '../helpers/cli.js';
import { expectCut, flowsAcross } from '../helpers/flows.js';
import { ROOT } from '../helpers/paths.js';

const LAB = 'labs/three-nodes.yaml';
const DENY = 'test/e2e/fixtures/x-default-deny.yaml';
const ALLOW = 'test/e2e/fixtures/x-allow.yaml';
const INERT = 'test/e2e/fixtures/y-select-nothing.yaml';
const ONE_MORE = 'test/e2e/fixtures/x-a-from-db.yaml';
const V1 = 'test/e2e/fixtures/v1-egress-named.yaml';
const FLOW_CLIENT = `${ROOT}test/e2e/fixtures/flow-client.mjs`;
const UDP_ONCE = `${ROOT}test/e2e/fixtures/udp-once.mjs`;
/** Whether this host had /sys/fs/bpf/tcplane before the lab (an agent of its own): then it stays. */
const BPFFS_ROOT_BEFORE = existsSync('/sys/fs/bpf/tcplane');
const plan = parseLabSpec(readFileSync(`${ROOT}${LAB}`, 'utf8'), LAB);

/** Labels as the test changes them, to compute what must connect. */
const podLabels = new Map(plan.pods.map((p) => [p.key, { ...p.labels }]));
const nsLabels = new Map(plan.namespaces.map((n) => [n.name, { ...n.labels }]));

type Expect = (row: ProbeRow) => boolean;
const everything: Expect = () => true;
/** x is isolated; clients reach x's web pods on TCP 80; trusted namespaces reach all of x. */
const policiesApplied: Expect = ({ from, to, port, protocol }) => {
  if (from === to) return true; // a pod reaches itself over loopback, never through its veth
  if (!to.startsWith('x/')) return true;
  const src = podLabels.get(from)!;
  if (nsLabels.get(from.split('/')[0]!)?.trusted === 'yes') return true;
  return src.app === 'client' && podLabels.get(to)!.app === 'web' && protocol === 'TCP' && port === 80;
};

/** test/e2e/fixtures/v1-egress-named.yaml: y's db pods send only outside y on TCP 80–443 and UDP 53; x's client admits https from non-web pods. */
const v1Applied: Expect = ({ from, to, port, protocol }) => {
  if (from === to) return true;
  const [src, dst] = [podLabels.get(from)!, podLabels.get(to)!];
  if (from.startsWith('y/') && src.app === 'db') {
    const allowed = !to.startsWith('y/') && ((protocol === 'TCP' && port >= 80 && port <= 443) || (protocol === 'UDP' && port === 53));
    if (!allowed) return false;
  }
  if (to.startsWith('x/') && dst.app === 'client') return protocol === 'TCP' && port === 443 && src.app !== 'web';
  return true;
};

/**
 * x/c admits every pod address (10.244.0.0/16) but x/d's; y/f sends only to db pods, on
 * the numbers each gives the names http (TCP) and dns (UDP).
 */
const ipBlockPolicies = (excepted: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: c-from-pod-range, namespace: x}
spec:
  podSelector: {matchLabels: {pod: c}}
  ingress:
    - from:
        - ipBlock: {cidr: 10.244.0.0/16, except: [${excepted}/32]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: f-to-db-by-name, namespace: y}
spec:
  podSelector: {matchLabels: {pod: f}}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {}, podSelector: {matchLabels: {app: db}}}]
      ports: [{port: http}, {protocol: UDP, port: dns}]
`;
const declares = (key: string, name: string, protocol: string, port: number) =>
  plan.pods.find((p) => p.key === key)!.ports.some((d) => d.name === name && d.protocol === protocol && d.port === port);
const ipBlockApplied: Expect = ({ from, to, port, protocol }) => {
  if (from === to) return true;
  if (from === 'y/f') return podLabels.get(to)!.app === 'db' && (protocol === 'TCP' ? declares(to, 'http', 'TCP', port) : declares(to, 'dns', 'UDP', port));
  if (to === 'x/c') return from !== 'x/d';
  return true;
};

async function probe(extra: string[] = []): Promise<ProbeRow[]> {
  const r = await tcplane(['lab', 'probe', '--json', '--timeout-ms', '500', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ProbeRow[];
}

/** Every row as `from → to port/proto: connected`, for readable diffs. */
const show = (rows: ProbeRow[], f: (r: ProbeRow) => boolean) =>
  rows.map((r) => `${r.from} → ${r.to} ${r.port}/${r.protocol}: ${f(r) ? 'connected' : 'blocked'}`);

async function expectMatrix(want: Expect): Promise<ProbeRow[]> {
  const rows = await probe();
  expect(show(rows, (r) => r.connected)).toEqual(show(rows, want));
  return rows;
}

/** Probes one pair until it gives the wanted answer; returns how long that took (ms). */
async function untilConnects(from: string, to: string, port: number, want: boolean, limitMs = 10_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    const r = await tcplane(['lab', 'probe', '--json', '--ports', String(port), '--protocols', 'TCP', '--timeout-ms', '200']);
    const row = (JSON.parse(r.stdout) as ProbeRow[]).find((x) => x.from === from && x.to === to);
    if (row?.connected === want) return Date.now() - start;
    if (Date.now() - start > limitMs) throw new Error(`${from} → ${to}:${port} still ${want ? 'blocked' : 'connected'} after ${limitMs} ms`);
  }
}

/** Polls cond every 50 ms; fails naming what it waited for after limitMs. */
async function until(cond: () => boolean | Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > limitMs) throw new Error(`gave up after ${limitMs} ms waiting until ${what}`);
    await sleep(50);
  }
}

/** Sends one UDP datagram of `size` bytes from a pod; returns the size echoed whole, or 0. */
async function udpOnce(from: string, toIp: string, port: number, size: number): Promise<number> {
  const r = await tcplane(['lab', 'exec', from, '--', process.execPath, UDP_ONCE, toIp, String(port), String(size)]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { echoed: number }).echoed;
}
const podIp = (key: string) => plan.pods.find((p) => p.key === key)!.ip;

/** Counters and gauges an agent serves, as `name{labels}` → value. */
async function scrape(node: string): Promise<Map<string, number>> {
  const n = (await readLabState()).nodes.find((x) => x.name === node)!;
  const text = await (await fetch(`http://${agentMetricsAddress(n)}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  return new Map(lines.map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))]));
}
/** How much each series grew from one scrape to the next (series that did not, left out). */
function growth(before: Map<string, number>, after: Map<string, number>, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) if (k.startsWith(prefix) && v !== (before.get(k) ?? 0)) out[k.slice(prefix.length)] = v - (before.get(k) ?? 0);
  return out;
}

async function apply(...args: string[]) {
  const r = await tcplane(args);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

describe('policy e2e', () => {
  beforeAll(async () => {
    if (!existsSync(`${ROOT}dist/src/cli/main.js`)) throw new Error('run `make build` first');
    await tcplane(['lab', 'down']);
    const r = await tcplane(['lab', 'up', '-f', LAB]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await tcplane(['lab', 'down']);
    for (const n of plan.nodes) expect(existsSync(`/sys/fs/bpf/tcplane/${n.name}`), n.name).toBe(false);
    if (!BPFFS_ROOT_BEFORE) expect(existsSync('/sys/fs/bpf/tcplane')).toBe(false); // the root the lab's agents made, emptied
  });

  it('policy e2e - with no policy every pod reaches every pod on every declared port, TCP and UDP, across nodes', async () => {
    const rows = await expectMatrix(everything);
    const pairs = plan.pods.length * plan.pods.length; // each pod to itself included
    expect(new Set(rows.map((r) => `${r.from}>${r.to}`)).size).toBe(pairs);
    expect(new Set(rows.map((r) => r.protocol))).toEqual(new Set(['TCP', 'UDP']));
  });

  it('policy e2e - a UDP datagram larger than the MTU crosses nodes as fragments, there and back', async () => {
    expect(await udpOnce('x/a', podIp('y/e'), 53, 4000)).toBe(4000); // n1 → n2
    expect(await udpOnce('y/i', podIp('x/d'), 80, 9000)).toBe(9000); // n3 → n2
  });

  it('policy e2e - a file with an error applies nothing and names file, line and field', async () => {
    const r = await tcplane(['apply', '-f', 'test/e2e/fixtures/half-bad.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('test/e2e/fixtures/half-bad.yaml:20: spec.ingress[0].ports[0].port');
    expect(r.stderr).toMatch(/nothing applied/);
    const get = await apply('get', 'policies');
    expect(get.stdout.trim()).toBe('No resources found.');
  });

  it('policy e2e - default deny for x plus allowed peers: exactly the expected pairs connect, replies included', async () => {
    const r = await apply('apply', '-f', DENY, '-f', ALLOW, '--wait');
    expect(r.stdout).toMatch(/enforced on 3 nodes: n1, n2, n3/);
    const rows = await expectMatrix(policiesApplied);
    // Isolated pods still open connections out and get their replies.
    expect(rows.filter((x) => x.from.startsWith('x/') && x.to.startsWith('y/')).every((x) => x.connected)).toBe(true);
    expect(rows.some((x) => !x.connected)).toBe(true);
    // Fragments follow their first fragment: the echo of a big datagram reaches isolated
    // x/a as a reply; into isolated x/d, where policy allows no UDP, none gets through.
    expect(await udpOnce('x/a', podIp('y/e'), 53, 4000)).toBe(4000);
    const before = await scrape('n2');
    expect(await udpOnce('y/i', podIp('x/d'), 80, 4000)).toBe(0);
    // What x/d's veth saw, over 3 tries of a 3-fragment datagram: each first fragment
    // dropped by policy, each later one as an orphan, nothing let in.
    const seen = growth(before, await scrape('n2'), 'tcplane_datapath_packets_total{hook="pod",direction="ingress",');
    delete seen['reason="pass_arp",verdict="pass"}']; // the node resolving x/d's address, maybe
    expect(seen).toEqual({ 'reason="drop_policy_default",verdict="drop"}': 3, 'reason="drop_fragment",verdict="drop"}': 6 });
  });

  it('policy e2e - a change that now denies an established connection cuts it at its next packets: a relabelled client, an egress policy added', async () => {
    const control = join(tmpdir(), `tp-cut-${process.pid}`);
    const egressFile = join(tmpdir(), `tp-cut-egress-${process.pid}.yaml`);
    writeFileSync(
      egressFile,
      ['apiVersion: networking.k8s.io/v1', 'kind: NetworkPolicy', 'metadata: {name: a-sends-nothing, namespace: x}', 'spec:', '  podSelector: {matchLabels: {pod: a}}', '  policyTypes: [Egress]', ''].join('\n'),
    );
    try {
      // Both allowed now: y/f is a client (x-allow: clients reach web's TCP 80), and x/a's egress is open.
      const [tcp, udp] = await flowsAcross(control, { from: 'y/f', ip: podIp('x/a'), port: 80 }, { from: 'x/a', ip: podIp('y/b'), port: 80 }, async () => {
        await apply('lab', 'label', 'pod', 'y/f', 'app=former-client');
        await apply('apply', '-f', egressFile, '--wait');
      });
      // The stream stalls (no reset: a drop, as policy drops) after the first echoes; the
      // datagrams before the change came back, none after.
      expectCut(tcp, udp);
    } finally {
      await tcplane(['lab', 'label', 'pod', 'y/f', 'app=client']);
      await tcplane(['delete', '-f', egressFile, '--ignore-not-found', '--wait']);
      rmSync(egressFile, { force: true });
    }
    await expectMatrix(policiesApplied);
  });

  it('policy e2e - agents count verdicts per reason and serve them as Prometheus metrics', async () => {
    await apply('apply', '-f', DENY, '-f', ALLOW, '--wait'); // what this test needs (unchanged if an earlier one applied it)
    const before = await scrape('n1');
    await expectMatrix(policiesApplied); // this test's own traffic: into isolated x/a and x/c (n1), their replies, pods sending
    const after = await scrape('n1');
    const grew = growth(before, after, 'tcplane_datapath_packets_total');
    const series = (direction: string, reason: string, verdict: string) => grew[`{hook="pod",direction="${direction}",reason="${reason}",verdict="${verdict}"}`] ?? 0;
    expect(series('ingress', 'drop_policy_default', 'drop')).toBeGreaterThan(0);
    expect(series('ingress', 'pass_policy', 'pass')).toBeGreaterThan(0);
    expect(series('ingress', 'pass_reply', 'pass')).toBeGreaterThan(0); // replies to x/a's and x/c's own connections
    expect(series('egress', 'pass_default', 'pass')).toBeGreaterThan(0);
    expect(after.get('tcplane_map_entries{map="tp_policy_v1"}')).toBeGreaterThan(0);
    expect(after.get('tcplane_enforced_revision{bucket="policies"}')).toBeGreaterThan(0);
  });

  it('policy e2e - an agent restart keeps enforcing, loses no packet of live flows and rewrites nothing', async () => {
    const state = await readLabState();
    const n1 = state.nodes.find((n) => n.name === 'n1')!;
    const old = state.processes.find((p) => p.role === 'agent' && p.name === 'n1')!;
    const ip = (key: string) => state.pods.find((p) => p.key === key)!.ip;
    const control = join(tmpdir(), `tp-flow-${process.pid}`);
    const controlFiles = ['tcp', 'udp'].flatMap((f) => [`${control}-${f}.ready`, `${control}-${f}.stop`]);
    const flows: Promise<CliResult>[] = [];
    let restarted: { pid: number } | undefined;
    try {
      // y/f → x/a TCP 80 enters isolated x/a by policy; x/a → y/b UDP 80 has its replies
      // admitted into isolated x/a by conntrack alone. Both cross n1's veths.
      flows.push(tcplane(['lab', 'exec', 'y/f', '--', process.execPath, FLOW_CLIENT, 'tcp', ip('x/a'), '80', `${control}-tcp`]));
      flows.push(tcplane(['lab', 'exec', 'x/a', '--', process.execPath, FLOW_CLIENT, 'udp', ip('y/b'), '80', `${control}-udp`]));
      await until(() => existsSync(`${control}-tcp.ready`) && existsSync(`${control}-udp.ready`), 'both flows echo');

      process.kill(old.pid, 'SIGTERM');
      await until(async () => !(await isAlive(old.pid)), `n1's agent (pid ${old.pid}) exits`);
      // No agent on n1: its pinned programs and maps go on deciding, new connections included.
      const rows = await probe(['--ports', '80']);
      expect(show(rows, (r) => r.connected)).toEqual(show(rows, policiesApplied));

      // A new agent adopts the pinned maps and links and finds nothing to write.
      restarted = await startAgent(n1, state.natsUrl);
      const metrics = async () => (await fetch(`http://${agentMetricsAddress(n1)}/metrics`).catch(() => null))?.text();
      let text: string | undefined;
      await until(async () => /^tcplane_reconcile_total [1-9]/m.test((text = await metrics()) ?? ''), 'the new agent reconciles');
      expect(await isAlive(restarted.pid)).toBe(true);
      expect(text!.match(/^tcplane_map_writes_total\{.*$/gm) ?? []).toEqual([]);
      expect(text).toMatch(/^tcplane_endpoints 3$/m);

      for (const f of ['tcp', 'udp']) writeFileSync(`${control}-${f}.stop`, '');
      for (const [i, r] of (await Promise.all(flows)).entries()) {
        expect(r.code, r.stderr).toBe(0);
        const flow = JSON.parse(r.stdout) as { sent: number; echoed: number; lost: number[]; error: string | null; stoppedBy: string };
        console.log(`across the agent restart, flow ${i === 0 ? 'TCP y/f → x/a' : 'UDP x/a → y/b'}: ${flow.echoed}/${flow.sent} echoed`);
        expect(flow.stoppedBy, `flow ${i}`).toBe('stop file'); // it ran across the whole restart
        expect(flow.error, `flow ${i}`).toBeNull();
        expect(flow.lost, `flow ${i}`).toEqual([]);
        expect(flow.sent).toBeGreaterThan(20);
      }
    } finally {
      // The tests after this one need n1's agent, whatever failed here.
      if (!restarted && !(await isAlive(old.pid))) await startAgent(n1, state.natsUrl);
      for (const f of ['tcp', 'udp']) writeFileSync(`${control}-${f}.stop`, '');
      await Promise.allSettled(flows);
      for (const f of controlFiles) rmSync(f, { force: true });
    }
  });

  it('policy e2e - relabelling a pod moves it between identities: what it reaches and what reaches it follow', async () => {
    // y/e (app=db) becomes a client: it may now reach x's web pods on TCP 80.
    await apply('lab', 'label', 'pod', 'y/e', 'app=client');
    podLabels.get('y/e')!.app = 'client';
    const reach = await untilConnects('y/e', 'x/a', 80, true);
    // x/d (web) stops being a web pod: clients lose it.
    await apply('lab', 'label', 'pod', 'x/d', 'app=retired');
    podLabels.get('x/d')!.app = 'retired';
    const reached = await untilConnects('y/f', 'x/d', 80, false);
    console.log(`relabel followed in ${reach} ms (reach) and ${reached} ms (be reached), probe time included`);
    await expectMatrix(policiesApplied);
    // Back as the lab declares them, so no later test depends on this one.
    await apply('lab', 'label', 'pod', 'y/e', 'app=db');
    podLabels.get('y/e')!.app = 'db';
    await apply('lab', 'label', 'pod', 'x/d', 'app=web');
    podLabels.get('x/d')!.app = 'web';
    await untilConnects('y/f', 'x/d', 80, true);
    await expectMatrix(policiesApplied);
  });

  it('policy e2e - relabelling a namespace moves all its pods, and removing the label moves them back', async () => {
    await apply('lab', 'label', 'namespace', 'y', 'trusted=yes');
    nsLabels.get('y')!.trusted = 'yes';
    const t = await untilConnects('y/h', 'x/c', 443, true);
    console.log(`namespace relabel followed in ${t} ms, probe time included`);
    await expectMatrix(policiesApplied);
    await apply('lab', 'label', 'namespace', 'y', 'trusted-');
    delete nsLabels.get('y')!.trusted;
    await untilConnects('y/h', 'x/c', 443, false);
    await expectMatrix(policiesApplied);
  });

  it('policy e2e - get shows the policies, endpoints with identities, and every node enforcing', async () => {
    await apply('apply', '-f', DENY, '-f', ALLOW, '--wait'); // the policies it shows (unchanged if an earlier test applied them)
    const p = await apply('get', 'policies');
    expect(p.stdout).toMatch(/NetworkPolicy\s+x\s+all-from-trusted-namespaces/);
    expect(p.stdout).toMatch(/NetworkPolicy\s+x\s+default-deny-ingress/);
    type Ep = { namespace: string; name: string; identity: number; labels: { pod: Record<string, string> } };
    const endpoints = async () => JSON.parse((await apply('get', 'endpoints', '-o', 'json')).stdout) as Ep[];
    // y/e relabelled app=client like y/f: their pod labels still differ (pod: e, pod: f), so two identities.
    const was = podLabels.get('y/e')!.app!;
    await apply('lab', 'label', 'pod', 'y/e', 'app=client');
    let eps: Ep[] = [];
    try {
      await until(async () => (eps = await endpoints()).find((x) => x.namespace === 'y' && x.name === 'e')?.labels.pod.app === 'client', 'y/e shows app=client');
    } finally {
      await apply('lab', 'label', 'pod', 'y/e', `app=${was}`);
    }
    expect(eps).toHaveLength(plan.pods.length);
    const idOf = (k: string) => eps.find((x) => `${x.namespace}/${x.name}` === k)!.identity;
    expect(idOf('y/e')).not.toBe(idOf('y/f'));
    // In general: one identity per namespace and label set, and no two label sets share one.
    const setOf = (x: (typeof eps)[number]) => JSON.stringify([x.namespace, Object.entries(x.labels.pod).sort()]);
    const bySet = new Map<string, Set<number>>();
    for (const x of eps) (bySet.get(setOf(x)) ?? bySet.set(setOf(x), new Set()).get(setOf(x))!).add(x.identity);
    for (const ids of bySet.values()) expect(ids.size).toBe(1);
    expect(new Set(eps.map((x) => x.identity)).size).toBe(bySet.size);
    for (const x of eps) expect(x.identity).toBeGreaterThanOrEqual(256);
    const n = await apply('get', 'nodes');
    expect(n.stdout.trim().split('\n')).toHaveLength(4);
  });

  it('policy e2e - one more policy writes only the entries it adds, on the node of the pod it selects', async () => {
    const eps = JSON.parse((await apply('get', 'endpoints', '-o', 'json')).stdout) as { identity: number; labels: { pod: Record<string, string> } }[];
    const dbIdentities = new Set(eps.filter((e) => e.labels.pod.app === 'db').map((e) => e.identity));
    expect(dbIdentities.size).toBeGreaterThan(0);
    // Map writes counted by each agent around a change (however many reconciles it took).
    const writesDuring = async (change: () => Promise<unknown>) => {
      const before = await Promise.all(['n1', 'n2', 'n3'].map(scrape));
      await change();
      const after = await Promise.all(['n1', 'n2', 'n3'].map(scrape));
      return ['n1', 'n2', 'n3'].map((_, i) => growth(before[i]!, after[i]!, 'tcplane_map_writes_total'));
    };

    // x/a lives on n1: one policy entry per db identity (TCP 80), and x/a's endpoint entry
    // (its policy generation moves, so its connections are judged again); nothing else anywhere.
    try {
      const added = await writesDuring(() => apply('apply', '-f', ONE_MORE, '--wait'));
      expect(added).toEqual([{ '{map="tp_policy_v1",op="write"}': dbIdentities.size, '{map="tp_endpoints_v1",op="write"}': 1 }, {}, {}]);
      const db = [...podLabels].find(([, l]) => l.app === 'db')![0];
      await untilConnects(db, 'x/a', 80, true); // enforced means in force: the new peer gets in

      const removed = await writesDuring(() => apply('delete', '-f', ONE_MORE, '--wait'));
      expect(removed).toEqual([{ '{map="tp_policy_v1",op="delete"}': dbIdentities.size, '{map="tp_endpoints_v1",op="write"}': 1 }, {}, {}]);
    } finally {
      await tcplane(['delete', '-f', ONE_MORE, '--ignore-not-found', '--wait']);
    }
    await expectMatrix(policiesApplied);
  });

  it('policy e2e - corrupt records in the store are logged and skipped; agents go on enforcing changes', async () => {
    const store = await Store.connect(await labNatsUrl());
    const now = new Date().toISOString();
    let claimKey: string | undefined;
    let claim: IdentityClaim | undefined;
    try {
      // Each passes JSON parsing but not its schema: an address that is not one, a pod
      // CIDR that does not parse, an identity without labels.
      await store.put('pods', 'y/tp-corrupt', {
        v: 1, namespace: 'y', name: 'tp-corrupt', node: 'n1', labels: {}, ips: ['999.1.1.1'],
        ifname: 'tp-corrupt', ports: [], ready: true,
      });
      await store.put('nodes', 'tp-corrupt', { v: 1, name: 'tp-corrupt', addresses: ['10.250.0.99'], podCIDR: '10.244.9.0/99', agentVersion: '0', startedAt: now });
      await store.put('identities', 'id/9999', { v: 1, id: 9999 });
      // And a corrupt claim for a label set in use (y/f's, on n2): its pod keeps the
      // identity it was published with; every other pod is reconciled as usual.
      const eps = JSON.parse((await apply('get', 'endpoints', '-o', 'json')).stdout) as { namespace: string; name: string; identity: number }[];
      const fIdentity = eps.find((e) => e.namespace === 'y' && e.name === 'f')!.identity;
      const fLabels = (await store.get('identities', `id/${fIdentity}`, identityRecord))!.value.labels;
      claimKey = `labels/${labelsDigest(fLabels)}`;
      claim = (await store.get('identities', claimKey, identityClaim))!.value;
      await store.put('identities', claimKey, { v: 1, id: 0 });
      const r = await apply('apply', '-f', INERT, '--wait', '--timeout', '20s');
      expect(r.stdout).toMatch(/enforced on 3 nodes: n1, n2, n3/);
      await expectMatrix(policiesApplied);
      for (const node of ['n1', 'n2', 'n3']) {
        const log = readFileSync(agentLog(node), 'utf8');
        expect(log, node).toMatch(/"bucket":"pods","key":"y\/tp-corrupt".*invalid record in store/);
        expect(log, node).toMatch(/"bucket":"nodes","key":"tp-corrupt".*invalid record in store/);
        expect(log, node).toMatch(/"bucket":"identities","key":"id\/9999"/);
      }
      expect(readFileSync(agentLog('n2'), 'utf8')).toMatch(/"pod":"y\/f".*"keeping":\d+.*identity not resolved/);
      const after = JSON.parse((await apply('get', 'endpoints', '-o', 'json')).stdout) as { namespace: string; name: string; identity: number }[];
      expect(after.find((e) => e.namespace === 'y' && e.name === 'f')!.identity).toBe(fIdentity);
    } finally {
      if (claimKey && claim) await store.put('identities', claimKey, claim);
      for (const [kind, key] of [['pods', 'y/tp-corrupt'], ['nodes', 'tp-corrupt'], ['identities', 'id/9999']] as const) {
        await store.delete(kind, key).catch(() => undefined);
      }
      await store.close();
      await tcplane(['delete', '-f', INERT, '--ignore-not-found']);
    }
  });

  it('policy e2e - after delete -f every pod reaches every pod again', async () => {
    const r = await apply('delete', '-f', DENY, '-f', ALLOW, '--wait');
    expect(r.stdout).toMatch(/enforced on 3 nodes/);
    await expectMatrix(everything);
  });

  it('policy e2e - egress rules, matchExpressions, endPort and a named port: exactly the expected pairs connect', async () => {
    await apply('delete', '-f', DENY, '-f', ALLOW, '--ignore-not-found', '--wait'); // its matrix is its own policies' alone
    const r = await apply('apply', '-f', V1, '--wait');
    expect(r.stdout).toMatch(/enforced on 3 nodes/);
    try {
      const rows = await expectMatrix(v1Applied);
      // The file must change something both ways, or this proves little.
      expect(rows.filter((x) => !x.connected).length).toBeGreaterThan(10);
      expect(rows.filter((x) => x.from.startsWith('y/') && podLabels.get(x.from)!.app === 'db' && x.connected && x.from !== x.to).length).toBeGreaterThan(2);
    } finally {
      await apply('delete', '-f', V1, '--wait');
    }
    await expectMatrix(everything);
  });

  it('policy e2e - ipBlock per address and egress named ports: an except cuts one pod out of its range, not its label twin; an egress name resolves on each destination', async () => {
    await apply('delete', '-f', DENY, '-f', ALLOW, '--ignore-not-found', '--wait'); // its matrix is its own policies' alone
    // x/d and x/g become label twins (one identity): only their addresses tell them apart.
    const before = { d: { ...podLabels.get('x/d')! }, g: { ...podLabels.get('x/g')! } };
    const twin = async (key: string, back?: Record<string, string>) => {
      const changes = back ? Object.entries(back).map(([k, v]) => `${k}=${v}`) : ['pod-', 'app=twin'];
      await apply('lab', 'label', 'pod', key, ...changes);
      podLabels.set(key, back ? { ...back } : { app: 'twin' });
    };
    await twin('x/d');
    await twin('x/g');
    const file = join(tmpdir(), `tp-ipblock-${process.pid}.yaml`);
    writeFileSync(file, ipBlockPolicies(podIp('x/d')));
    try {
      const r = await apply('apply', '-f', file, '--wait');
      expect(r.stdout).toMatch(/enforced on 3 nodes/);
      const ids = JSON.parse((await apply('get', 'endpoints', '-o', 'json')).stdout) as { namespace: string; name: string; identity: number }[];
      const idOf = (key: string) => ids.find((e) => `${e.namespace}/${e.name}` === key)?.identity;
      expect(idOf('x/d')).toBe(idOf('x/g'));
      const rows = await expectMatrix(ipBlockApplied);
      // Both halves must bite, or this proves little.
      expect(rows.filter((x) => x.from === 'x/d' && x.to === 'x/c')).toSatisfy((r: ProbeRow[]) => r.length > 0 && r.every((x) => !x.connected));
      expect(rows.filter((x) => x.from === 'y/f' && x.to !== 'y/f' && x.connected).length).toBeGreaterThan(1);
    } finally {
      await apply('delete', '-f', file, '--wait');
      rmSync(file, { force: true });
      await twin('x/d', before.d);
      await twin('x/g', before.g);
    }
    await expectMatrix(everything);
  });

  it('policy e2e - apply --wait fails after --timeout naming a node whose agent is gone', async () => {
    // Stop n3's agent (the lab's process, by its recorded PID): its maps keep enforcing,
    // but it can no longer report, so a new policy cannot be confirmed there.
    const state = await readLabState();
    const agent = state.processes.find((p) => p.role === 'agent' && p.name === 'n3')!;
    process.kill(agent.pid, 'SIGTERM');
    const r = await tcplane(['apply', '-f', DENY, '--wait', '--timeout', '2s']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/timed out after 2s waiting for enforcement: n3 \(policies at revision \d+ of \d+, last report /);
  });
});
