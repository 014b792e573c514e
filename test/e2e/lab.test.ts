// The lab end to end, through the CLI as a user runs it (`node bin/tcplane.js lab …`).
// Needs root and `make build` first: creates tp-* network namespaces, links and processes,
// /run/tcplane/lab and a nats-server on 10.250.0.1:4222. Tears everything down in
// afterAll, also when a test fails.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, waitForAgents } from '../../src/lab/agents.js';
import { probeTargets, type ProbeTarget } from '../../src/lab/probe.js';
import { isAlive } from '../../src/lab/procs.js';
import { parseLabSpec } from '../../src/lab/spec.js';
import { labNatsUrl, readLabState, type LabState } from '../../src/lab/state.js';
import { STATE_DIR, STATE_FILE } from '../../src/lab/topology.js';
import { namespaceRecord, podRecord, type StatusRecord } from '../../src/store/schema.js';
import { Store } from '../../src/store/store.js';
import { startNats, type TestNats } from '../helpers/nats.js';
import { tcplane } from '../helpers/cli.js';
import { ROOT } from '../helpers/paths.js';

const LAB = 'labs/three-nodes.yaml';
const WHOAMI_CLIENT = `${ROOT}test/e2e/fixtures/whoami.mjs`;

const netnsLeft = () => (existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith('tp-')) : []);
const linksLeft = () => readdirSync('/sys/class/net').filter((n) => n.startsWith('tp-'));
async function liveLabProcesses(pids: number[]): Promise<number[]> {
  const alive = await Promise.all(pids.map(async (p) => ((await isAlive(p)) ? p : -1)));
  return alive.filter((p) => p >= 0);
}

/** Asserts that nothing of a lab is left on the machine. */
/** What this host had before the tests (its own agent, say): then it stays. */
const BPFFS_ROOT_BEFORE = existsSync('/sys/fs/bpf/tcplane');
const RUN_DIR_BEFORE = existsSync(dirname(STATE_DIR)) && !existsSync(STATE_DIR);

async function expectNothingLeft(pids: number[]): Promise<void> {
  expect(netnsLeft()).toEqual([]);
  expect(linksLeft()).toEqual([]);
  expect(await liveLabProcesses(pids)).toEqual([]);
  expect(existsSync(STATE_DIR)).toBe(false);
  if (!RUN_DIR_BEFORE) expect(existsSync(dirname(STATE_DIR))).toBe(false); // /run/tcplane, emptied
}

async function up(extra: string[] = ['--no-agents']): Promise<LabState> {
  const r = await tcplane(['lab', 'up', '-f', LAB, ...extra]);
  expect(r.stderr + r.stdout).toMatch(/lab up: 3 nodes, 2 namespaces, 9 pods/);
  expect(r.code).toBe(0);
  return readLabState();
}

const plan = parseLabSpec(readFileSync(`${ROOT}${LAB}`, 'utf8'), LAB);
const planned = (key: string) => plan.pods.find((p) => p.key === key)!;
/** x/a's address, as the spec gives it. */
const XA = planned('x/a').ip;

/** The pod's record in tcplane-pods, or null. */
async function podInStore(key: string) {
  const store = await Store.connect(await labNatsUrl());
  try {
    return (await store.get('pods', key, podRecord))?.value ?? null;
  } finally {
    await store.close();
  }
}

/** Polls cond every 50 ms; fails naming what it waited for after limitMs. */
async function until(cond: () => Promise<boolean>, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > limitMs) throw new Error(`gave up after ${limitMs} ms waiting until ${what}`);
    await sleep(50);
  }
}

/** One WHOAMI probe (TCP or UDP) from `from` to pod `to` on `port`. */
async function whoami(from: string, to: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP') {
  const target: ProbeTarget = { to, ip: planned(to).ip, port, protocol, whoami: true };
  const [r] = await probeTargets(await readLabState(), from, [target], 1000);
  return r;
}

describe('lab', () => {
  beforeAll(async () => {
    if (!existsSync(`${ROOT}dist/src/cli/main.js`)) throw new Error('run `make build` first');
    await tcplane(['lab', 'down']); // whatever an earlier run left
  });
  afterAll(async () => {
    await tcplane(['lab', 'down']);
  });

  it('lab - commands say clearly when no lab is up', async () => {
    const r = await tcplane(['lab', 'probe', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no lab is up/);
    const d = await tcplane(['lab', 'down']);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/no lab was up/);
  });

  describe('lab - a three-node lab without agents', () => {
    let state: LabState;
    beforeAll(async () => {
      state = await up();
    });

    it('lab - up records nodes, pods, NATS and one process per pod', () => {
      expect(state.phase).toBe('up');
      expect(state.natsUrl).toBe('nats://10.250.0.1:4222');
      expect(state.pods.map((p) => p.key).sort()).toEqual(plan.pods.map((p) => p.key).sort());
      expect(state.processes.filter((p) => p.role === 'pod')).toHaveLength(9);
      expect(state.processes.filter((p) => p.role === 'nats')).toHaveLength(1);
      expect(state.processes.filter((p) => p.role === 'client').map((p) => p.name)).toEqual(['outside']);
      expect(state.clients).toEqual(plan.clients);
      expect(netnsLeft().sort()).toEqual(
        ['tp-underlay', ...plan.nodes.map((n) => n.netns), ...plan.pods.map((p) => p.netns), 'tp-client-outside'].sort(),
      );
      expect(linksLeft()).toEqual(['tp-host']);
    });

    it('lab - up twice refuses and leaves the running lab alone', async () => {
      const r = await tcplane(['lab', 'up', '-f', LAB, '--no-agents']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/a lab is already up.*tcplane lab down/);
      expect((await readLabState()).createdAt).toBe(state.createdAt);
    });

    it('lab - probe --json: every pod reaches every pod, itself included, on each declared port, across nodes, TCP and UDP', async () => {
      const r = await tcplane(['lab', 'probe', '--json']);
      expect(r.code).toBe(0);
      const rows = JSON.parse(r.stdout) as { from: string; to: string; port: number; protocol: string; connected: boolean }[];
      const expected = plan.pods
        .flatMap((src) =>
          plan.pods.flatMap((dst) => dst.ports.map((p) => ({ from: src.key, to: dst.key, port: p.port, protocol: p.protocol, family: 4, connected: true }))),
        )
        .sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : a.to < b.to ? -1 : a.to > b.to ? 1 : a.port - b.port || (a.protocol < b.protocol ? -1 : 1)));
      expect(rows).toEqual(expected); // exact fields, stable order
      const nodeOf = new Map(plan.pods.map((p) => [p.key, p.node]));
      const crossNode = rows.filter((x) => nodeOf.get(x.from) !== nodeOf.get(x.to));
      expect(new Set(crossNode.map((x) => x.protocol))).toEqual(new Set(['TCP', 'UDP']));
    });

    it('lab - probe narrows by port and protocol, and prints a table without --json', async () => {
      const r = await tcplane(['lab', 'probe', '--json', '--ports', '80', '--protocols', 'UDP']);
      const rows = JSON.parse(r.stdout) as { port: number; protocol: string; connected: boolean }[];
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((x) => x.port === 80 && x.protocol === 'UDP' && x.connected)).toBe(true);
      const t = await tcplane(['lab', 'probe', '--ports', '443']);
      expect(t.stdout).toMatch(/^FROM\s+TO\s+PORT\s+PROTO\s+FAMILY\s+RESULT/);
      expect(t.stdout).toMatch(/\d+\/\d+ connected\n$/);
    });

    it('lab - probe reports what does not connect (refused or timed out) as connected:false', async () => {
      // Cut x/c off: no default route, so its probes fail at once and replies to it never arrive.
      expect((await tcplane(['lab', 'exec', 'x/c', '--', 'ip', 'route', 'del', 'default'])).code).toBe(0);
      try {
        const t0 = Date.now();
        const r = await tcplane(['lab', 'probe', '--json', '--timeout-ms', '300']);
        const took = Date.now() - t0;
        const rows = JSON.parse(r.stdout) as { from: string; to: string; connected: boolean; reason?: string }[];
        // x/c still reaches itself (loopback needs no route).
        for (const x of rows) expect(x.connected).toBe(x.from === x.to || (x.from !== 'x/c' && x.to !== 'x/c'));
        expect(rows.some((x) => x.to === 'x/c' && x.from !== 'x/c')).toBe(true);
        // From x/c: no route at all; to x/c: the replies never come back.
        for (const x of rows.filter((y) => !y.connected)) expect(x.reason).toBe(x.from === 'x/c' ? 'unreachable' : 'timeout');
        expect(rows.filter((y) => y.connected).every((y) => !('reason' in y))).toBe(true);
        // Informational only (no wall-clock assertions in tests): probes run concurrently.
        console.log(`lab probe with failures: ${rows.length} probes in ${took} ms (timeout 300 ms)`);
      } finally {
        await tcplane(['lab', 'exec', 'x/c', '--', 'ip', 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'tp-eth0']);
      }
      const again = JSON.parse((await tcplane(['lab', 'probe', '--json'])).stdout) as { connected: boolean }[];
      expect(again.every((x) => x.connected)).toBe(true);
    });

    it('lab - probe --to-service without services: an empty JSON array, and a note in the table form', async () => {
      const json = await tcplane(['lab', 'probe', '--to-service', '--json']);
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual([]);
      const table = await tcplane(['lab', 'probe', '--to-service']);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stderr).toMatch(/lab probe --to-service: no services in the store, nothing to probe/);
    });

    it("lab - exec runs in the pod's namespace and propagates the exit code", async () => {
      const r = await tcplane(['lab', 'exec', 'x/a', '--', 'ip', '-4', 'addr', 'show', 'dev', 'tp-eth0']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/inet 10\.244\.1\.10\/32/);
      expect((await tcplane(['lab', 'exec', 'x/a', '--', 'sh', '-c', 'exit 7'])).code).toBe(7);
      const bad = await tcplane(['lab', 'exec', 'x/nope', '--', 'true']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/no pod x\/nope in the lab \(pods: x\/a, y\/b, .*; clients: outside\)/);
    });

    it("lab - exec CLIENT runs in the client's namespace: on the underlay, IPv6 off", async () => {
      const addr = await tcplane(['lab', 'exec', 'outside', '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'tp-eth0']);
      expect(addr.code).toBe(0);
      expect(addr.stdout).toMatch(/inet 10\.250\.0\.200\/24 /);
      expect((await tcplane(['lab', 'exec', 'outside', '--', 'sh', '-c', 'exit 3'])).code).toBe(3);
      const v6 = await tcplane(['lab', 'exec', 'outside', '--', 'cat', '/proc/sys/net/ipv6/conf/all/disable_ipv6']);
      expect(v6.stdout.trim()).toBe('1');
      const bad = await tcplane(['lab', 'exec', 'inside', '--', 'true']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/no client inside in the lab \(pods: .*; clients: outside\)/);
    });

    it("lab - a client reaches every node's underlay address and no pod; the external range goes via the first node", async () => {
      const routes = await tcplane(['lab', 'exec', 'outside', '--', 'ip', '-4', 'route', 'show']);
      expect(routes.stdout.trim().split('\n').map((l) => l.trim())).toEqual([
        '10.250.0.0/24 dev tp-eth0 proto kernel scope link src 10.250.0.200',
        `10.250.1.0/24 via ${plan.nodes[0].underlayIP} dev tp-eth0`,
      ]);
      // Nothing listens on port 9 of a node: its kernel answers with a RST (refused), which
      // proves the round trip. Pods are not routed from a client at all (unreachable).
      const nodes = plan.nodes.map((n): ProbeTarget => ({ to: n.name, ip: n.underlayIP, port: 9, protocol: 'TCP' }));
      const pods = plan.pods.flatMap((p) => p.ports.map((q): ProbeTarget => ({ to: p.key, ip: p.ip, port: q.port, protocol: q.protocol, whoami: true })));
      const rows = await probeTargets(state, 'outside', [...nodes, ...pods], 500);
      expect(rows.slice(0, nodes.length).map((r) => [r.to, r.connected, r.reason])).toEqual(plan.nodes.map((n) => [n.name, false, 'refused']));
      for (const r of rows.slice(nodes.length)) expect(r).toMatchObject({ connected: false, reason: 'unreachable', backend: null, peer: null });
    });

    it('lab - WHOAMI over TCP: a pod answers with its name and both addresses, then echoes; other first bytes echo whole', async () => {
      const e = planned('y/e'); // on n2: x/a (n1) sees its address, natively routed
      const r = await tcplane(['lab', 'exec', 'y/e', '--', process.execPath, WHOAMI_CLIENT, 'tcp', XA, '80']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { local: string; answer: string; after: string; other: string };
      expect(out.local).toMatch(new RegExp(`^${e.ip.replaceAll('.', '\\.')}:\\d+$`));
      expect(out.answer).toBe(`{"pod":"x/a","local":"${XA}:80","peer":"${out.local}","protocol":"TCP"}`);
      expect(out.after).toBe('after-the-line');
      expect(out.other).toBe('WHOAREYOU\n');
    });

    it('lab - WHOAMI over UDP: a datagram beginning with WHOAMI gets the answer line, others echo', async () => {
      const r = await tcplane(['lab', 'exec', 'y/e', '--', process.execPath, WHOAMI_CLIENT, 'udp', XA, '53']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { local: string; answer: string; answerEndsInNewline: boolean; after: string };
      expect(out.local).toMatch(new RegExp(`^${planned('y/e').ip.replaceAll('.', '\\.')}:\\d+$`));
      expect(out.answer).toBe(`{"pod":"x/a","local":"${XA}:53","peer":"${out.local}","protocol":"UDP"}`);
      expect(out.answerEndsInNewline).toBe(true);
      expect(out.after).toBe('hello');
    });

    it('lab - a whoami probe between pods returns backend and peer; refused ones carry a reason and nulls', async () => {
      const e = planned('y/e');
      const targets: ProbeTarget[] = [
        { to: 'x/a', ip: XA, port: 80, protocol: 'TCP', whoami: true },
        { to: 'x/a', ip: XA, port: 53, protocol: 'UDP', whoami: true },
        { to: 'x/a', ip: XA, port: 81, protocol: 'TCP', whoami: true },
        { to: 'x/a', ip: XA, port: 81, protocol: 'UDP', whoami: true },
      ];
      const rows = await probeTargets(state, 'y/e', targets, 1000);
      const peer = new RegExp(`^${e.ip.replaceAll('.', '\\.')}:\\d+$`);
      expect(rows).toEqual([
        { ...targets[0], connected: true, backend: 'x/a', peer: expect.stringMatching(peer) },
        { ...targets[1], connected: true, backend: 'x/a', peer: expect.stringMatching(peer) },
        { ...targets[2], connected: false, reason: 'refused', backend: null, peer: null }, // TCP RST
        { ...targets[3], connected: false, reason: 'refused', backend: null, peer: null }, // ICMP port unreachable
      ]);
      await expect(probeTargets(state, 'x/nope', targets)).rejects.toThrow(/no pod or client x\/nope in the lab/);
    });

    it('lab - pod ready rewrites the ready field of the pod record', async () => {
      const r = await tcplane(['lab', 'pod', 'ready', 'x/d', 'false']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/pod x\/d ready: false/);
      expect(await podInStore('x/d')).toMatchObject({ ready: false, labels: planned('x/d').labels, ips: [planned('x/d').ip] });
      expect((await tcplane(['lab', 'pod', 'ready', 'x/d', 'true'])).code).toBe(0);
      expect(await podInStore('x/d')).toMatchObject({ ready: true });
      const bad = await tcplane(['lab', 'pod', 'ready', 'x/d', 'yes']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/expected true or false/);
      expect((await tcplane(['lab', 'pod', 'ready', 'x/nope', 'true'])).stderr).toMatch(/no pod x\/nope in the lab/);
    });

    it('lab - pod stop --grace-seconds 2: terminating while its servers answer, then record and servers gone; start brings it back as declared', async () => {
      const d = planned('x/d');
      expect((await tcplane(['lab', 'label', 'pod', 'x/d', 'extra=1'])).code).toBe(0); // start restores the declared labels
      const oldPid = (await readLabState()).processes.find((p) => p.role === 'pod' && p.name === 'x/d')!.pid;
      const stop = tcplane(['lab', 'pod', 'stop', 'x/d', '--grace-seconds', '2']);
      await until(async () => (await podInStore('x/d'))?.terminating === true, 'x/d is terminating');
      expect(await podInStore('x/d')).toMatchObject({ ready: false, terminating: true });
      expect(await whoami('x/a', 'x/d', 80)).toMatchObject({ connected: true, backend: 'x/d' }); // still answers
      const r = await stop;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('pod x/d stopped\n');
      expect(await podInStore('x/d')).toBeNull();
      expect(await isAlive(oldPid)).toBe(false);
      const after = await readLabState();
      expect(after.pods.find((p) => p.key === 'x/d')?.stopped).toBe(true);
      expect(after.processes.some((p) => p.name === 'x/d')).toBe(false);
      // Its namespace stays: the kernel there refuses (no server), and exec still works.
      expect(await whoami('x/a', 'x/d', 80)).toMatchObject({ connected: false, reason: 'refused', backend: null });
      expect((await tcplane(['lab', 'exec', 'x/d', '--', 'ip', '-4', 'addr', 'show', 'dev', 'tp-eth0'])).stdout).toContain(`inet ${d.ip}/32`);
      // lab probe skips it as source and target; nor can it be a source for anyone.
      const rows = JSON.parse((await tcplane(['lab', 'probe', '--json'])).stdout) as { from: string; to: string; connected: boolean }[];
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.filter((x) => x.from === 'x/d' || x.to === 'x/d')).toEqual([]);
      expect(rows.every((x) => x.connected)).toBe(true);
      await expect(probeTargets(after, 'x/d', [{ to: 'x/a', ip: XA, port: 80, protocol: 'TCP' }])).rejects.toThrow(/pod x\/d is stopped/);
      // Wrong order: clear errors.
      const again = await tcplane(['lab', 'pod', 'stop', 'x/d']);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/pod x\/d is already stopped/);
      expect((await tcplane(['lab', 'pod', 'ready', 'x/d', 'true'])).stderr).toMatch(/pod x\/d is stopped/);

      const start = await tcplane(['lab', 'pod', 'start', 'x/d']);
      expect(start.code, start.stderr).toBe(0);
      expect(await podInStore('x/d')).toEqual({
        v: 1,
        namespace: 'x',
        name: 'd',
        node: d.node,
        labels: d.labels,
        ips: [d.ip],
        ifname: d.hostIf,
        ports: d.ports,
        ready: true,
      });
      expect(await whoami('x/a', 'x/d', 80)).toMatchObject({ connected: true, backend: 'x/d' });
      expect(await whoami('x/a', 'x/d', 80, 'UDP')).toMatchObject({ connected: true, backend: 'x/d' });
      expect((await readLabState()).pods.find((p) => p.key === 'x/d')?.stopped).toBeUndefined();
      const twice = await tcplane(['lab', 'pod', 'start', 'x/d']);
      expect(twice.code).toBe(1);
      expect(twice.stderr).toMatch(/pod x\/d is running, not stopped/);
    });

    it('lab - pod stop: SIGINT during the grace period still removes the pod before exiting', async () => {
      let pid = 0;
      const stop = tcplane(['lab', 'pod', 'stop', 'x/g', '--grace-seconds', '300'], { onSpawn: (p) => (pid = p) });
      await until(async () => (await podInStore('x/g'))?.terminating === true, 'x/g is terminating');
      const start = await tcplane(['lab', 'pod', 'start', 'x/g']);
      expect(start.stderr).toMatch(/pod x\/g is terminating/);
      process.kill(pid, 'SIGINT');
      const r = await stop;
      expect(r.code).toBe(130);
      expect(r.stdout).toMatch(/pod x\/g stopped \(SIGINT ended the grace period early\)/);
      expect(await podInStore('x/g')).toBeNull();
      expect((await readLabState()).pods.find((p) => p.key === 'x/g')?.stopped).toBe(true);
      expect(await whoami('x/a', 'x/g', 80)).toMatchObject({ connected: false, reason: 'refused' });
      expect((await tcplane(['lab', 'pod', 'start', 'x/g'])).code).toBe(0);
      expect(await whoami('x/a', 'x/g', 80)).toMatchObject({ connected: true, backend: 'x/g' });
    });

    it('lab - pods route through a permanent gateway entry, nodes route natively, IPv6 is off', async () => {
      const a = plan.pods.find((p) => p.key === 'x/a')!;
      const neigh = await tcplane(['lab', 'exec', 'x/a', '--', 'ip', 'neigh', 'show', '169.254.1.1']);
      expect(neigh.stdout).toMatch(new RegExp(`lladdr ${a.hostMac} PERMANENT`));
      const v6 = await tcplane(['lab', 'exec', 'x/a', '--', 'cat', '/proc/sys/net/ipv6/conf/all/disable_ipv6']);
      expect(v6.stdout.trim()).toBe('1');
    });

    it('lab - label rewrites the pod and namespace records in the store', async () => {
      const p = await tcplane(['lab', 'label', 'pod', 'x/a', 'tier=front', 'app=api', 'pod-']);
      expect(p.code).toBe(0);
      const n = await tcplane(['lab', 'label', 'namespace', 'y', 'team=blue', 'ns-']);
      expect(n.code).toBe(0);
      const store = await Store.connect(await labNatsUrl());
      try {
        const pod = await store.get('pods', 'x/a', podRecord);
        expect(pod?.value.labels).toEqual({ app: 'api', tier: 'front' });
        expect(pod?.value).toMatchObject({ ips: [XA], ifname: state.pods.find((x) => x.key === 'x/a')!.hostIf, ready: true });
        const ns = await store.get('namespaces', 'y', namespaceRecord);
        expect(ns?.value.labels).toEqual({ 'kubernetes.io/metadata.name': 'y', team: 'blue' });
      } finally {
        await store.close();
      }
      const bad = await tcplane(['lab', 'label', 'pod', 'x/a', 'bad key=v']);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/invalid label key/);
      const immutable = await tcplane(['lab', 'label', 'namespace', 'y', 'kubernetes.io/metadata.name-']);
      expect(immutable.code).toBe(1);
    });

    it('lab - down removes every namespace, link, process and the state directory, clients and stopped pods included; twice is fine', async () => {
      expect((await tcplane(['lab', 'pod', 'stop', 'y/h'])).code).toBe(0);
      const pids = [...state.processes, ...(await readLabState()).processes].map((p) => p.pid);
      expect(netnsLeft()).toContain('tp-client-outside');
      expect(netnsLeft()).toContain('tp-pod-y-h');
      const r = await tcplane(['lab', 'down']);
      expect(r.code).toBe(0);
      await expectNothingLeft(pids);
      const again = await tcplane(['lab', 'down']);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/no lab was up/);
    });
  });

  it('lab - down cleans up after a crash: daemons killed, state file gone', async () => {
    const state = await up();
    const pids = state.processes.map((p) => p.pid);
    for (const p of state.processes.filter((x) => x.role === 'pod').slice(0, 4)) process.kill(p.pid, 'SIGKILL');
    rmSync(STATE_FILE);
    const probe = await tcplane(['lab', 'probe']);
    expect(probe.stderr).toMatch(/no lab is up/);
    const r = await tcplane(['lab', 'down']);
    expect(r.code).toBe(0);
    await expectNothingLeft(pids); // the surviving daemons and nats-server were found without the state file
  });

  it('lab - an interrupted lab up tears down what it made and exits non-zero', async () => {
    let pid = 0;
    const run = tcplane(['lab', 'up', '-f', LAB, '--no-agents'], { onSpawn: (p) => (pid = p) });
    // Interrupt once the build has begun (its state file exists).
    for (let i = 0; i < 200 && !existsSync(STATE_FILE); i++) await sleep(10);
    process.kill(pid, 'SIGINT');
    const r = await run;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/tearing down/);
    await expectNothingLeft([]);
  });

  it('lab - bad specs fail before anything is made, naming file and line', async () => {
    const r = await tcplane(['lab', 'up', '-f', 'labs/does-not-exist.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/read labs\/does-not-exist.yaml/);
    const dir = mkdtempSync(join(tmpdir(), 'tp-lab-spec-'));
    try {
      const spec = (name: string, ...lines: string[]) => {
        const file = join(dir, name);
        writeFileSync(file, ['nodes: [n1]', 'namespaces:', '  - {name: x}', 'pods:', ...lines, ''].join('\n'));
        return file;
      };
      // Line 5 names a node the lab lacks; line 6 a field no pod has.
      for (const [file, want] of [
        [spec('node.yaml', '  - {name: a, namespace: x, node: n9}'), ':5: pods[0].node: unknown node n9'],
        [spec('field.yaml', '  - {name: a, namespace: x, node: n1}', '  - {name: b, namespace: x, node: n1, colour: red}'), ':6: pods[1].colour: unknown field'],
      ]) {
        const bad = await tcplane(['lab', 'up', '-f', file!]);
        expect(bad.code).toBe(1);
        expect(bad.stderr).toContain(`${file}${want}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(netnsLeft()).toEqual([]);
  });

  it('lab - with agents, up waits until every node enforces its pods', async () => {
    const state = await up(['--timeout-ms', '60000']);
    expect(state.processes.filter((p) => p.role === 'agent').map((p) => p.name).sort()).toEqual(['n1', 'n2', 'n3']);
    const rows = JSON.parse((await tcplane(['lab', 'probe', '--json'])).stdout) as { connected: boolean }[];
    expect(rows.length).toBe(144);
    expect(rows.every((x) => x.connected)).toBe(true); // no policies: everything is allowed

    // Node labels: LAB.yaml's and the hostname at registration, `lab label node` after;
    // an agent that restarts keeps what was set.
    const nodes = async () =>
      Object.fromEntries((JSON.parse((await tcplane(['get', 'nodes', '-o', 'json'])).stdout) as { name: string; labels: Record<string, string>; startedAt: string }[]).map((n) => [n.name, n]));
    expect(Object.fromEntries(Object.entries(await nodes()).map(([k, n]) => [k, n.labels]))).toEqual({
      n1: { 'kubernetes.io/hostname': 'n1' },
      n2: { 'kubernetes.io/hostname': 'n2', zone: 'b' },
      n3: { 'kubernetes.io/hostname': 'n3' },
    });
    const labeled = await tcplane(['lab', 'label', 'node', 'n1', 'zone=a', 'tier=edge']);
    expect(labeled.stdout).toMatch(/^node n1 labeled: .*zone=a/);
    expect((await tcplane(['lab', 'label', 'node', 'n2', 'zone-'])).code).toBe(0);
    const refused = await tcplane(['lab', 'label', 'node', 'n1', 'kubernetes.io/hostname=n9']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/kubernetes\.io\/hostname is the node's name and cannot change/);
    expect((await tcplane(['lab', 'label', 'node', 'n7', 'zone=a'])).stderr).toMatch(/no node n7 has registered/);
    const before = (await nodes()).n1!;
    const agent = state.processes.find((p) => p.role === 'agent' && p.name === 'n1')!;
    process.kill(agent.pid, 'SIGTERM');
    await until(async () => !(await isAlive(agent.pid)), "n1's agent exits");
    await startAgent(state.nodes.find((n) => n.name === 'n1')!, state.natsUrl);
    await until(async () => (await nodes()).n1!.startedAt !== before.startedAt, "n1's new agent registers");
    expect((await nodes()).n1!.labels).toEqual({ 'kubernetes.io/hostname': 'n1', zone: 'a', tier: 'edge' });
    expect((await nodes()).n2!.labels).toEqual({ 'kubernetes.io/hostname': 'n2' });
    expect((await tcplane(['get', 'nodes'])).stdout).toMatch(/tier=edge/);

    const r = await tcplane(['lab', 'down']);
    expect(r.code).toBe(0);
    await expectNothingLeft(state.processes.map((p) => p.pid));
    expect(plan.nodes.some((n) => existsSync(`/sys/fs/bpf/tcplane/${n.name}`))).toBe(false);
    if (!BPFFS_ROOT_BEFORE) expect(existsSync('/sys/fs/bpf/tcplane')).toBe(false); // the root the lab's agents made, emptied
  });
});

describe('lab agents wait', () => {
  let nats: TestNats;
  let store: Store;
  beforeAll(async () => {
    nats = await startNats();
    store = await Store.connect(nats.url);
  });
  afterAll(async () => {
    await store?.close();
    await nats?.stop();
  });

  const status = (node: string, pods: number, endpoints: number): StatusRecord => ({
    v: 1,
    node,
    revisions: { pods },
    endpoints,
    lastReconcile: { at: new Date().toISOString(), writes: {}, deletes: {} },
    updatedAt: new Date().toISOString(),
  });

  it('lab agents wait - resolves once every node reports the revision and its pod count', async () => {
    await store.put('status', 'w1', status('w1', 3, 2));
    const wait = waitForAgents(store, [{ node: 'w1', pods: 2 }, { node: 'w2', pods: 1 }], 5, 10_000);
    let done = false;
    void wait.then(() => (done = true));
    await sleep(100);
    expect(done).toBe(false); // w1 is behind, w2 silent
    await store.put('status', 'w2', status('w2', 5, 1));
    await store.put('status', 'w1', status('w1', 6, 2));
    await wait;
  });

  it('lab agents wait - times out naming the lagging nodes and their logs', async () => {
    await store.put('status', 'w3', status('w3', 9, 1)); // revision fine, endpoints short
    const err = await waitForAgents(store, [{ node: 'w3', pods: 2 }, { node: 'w4', pods: 1 }], 9, 300).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/w3: 1\/2 endpoints \(log \/run\/tcplane\/lab\/logs\/agent-w3\.log\)/);
    expect((err as Error).message).toMatch(/w4: no status yet/);
  });

  it('lab agents wait - an agent exiting ends the wait at once', async () => {
    const abort = Promise.reject(new Error('agent w5 exited (exit code 1)'));
    abort.catch(() => undefined);
    await expect(waitForAgents(store, [{ node: 'w5', pods: 1 }], 1, 10_000, abort)).rejects.toThrow(/agent w5 exited/);
  });
});
