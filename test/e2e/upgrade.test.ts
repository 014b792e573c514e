// Upgrading a node from tcplane 0.1 to this agent, end to end: in a three-node lab with
// policies, n1 is put back on 0.1's datapath (its programs and maps, conntrack in the old
// tp_ct_v1), live TCP and UDP flows run through it, then today's agent starts on n1. It
// adopts the maps, migrates conntrack and swaps the programs in place: no packet of the
// flows is lost, every packet of them the new programs see passes on its migrated
// conntrack entry (counted pass_established: without the migration the first of each
// flow would be judged as a new connection, pass_policy, and this test fails that way),
// and what the policies deny stays denied.
// Needs root and `make build`: creates tp-* namespaces, links, processes and pins, all
// removed in afterAll (also when a test fails).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfMap } from '../../src/bpf/map.js';
import { TP_HOOK } from '../../src/datapath/constants.js';
import { TP_REASON, reasonName } from '../../src/datapath/reasons.js';
import { startAgent } from '../../src/lab/agents.js';
import { isAlive } from '../../src/lab/procs.js';
import { readLabState } from '../../src/lab/state.js';
import { agentLog, nodeBpffs } from '../../src/lab/topology.js';
import { run } from '../../src/lab/exec.js';
import { tcplane, type CliResult, type ProbeRow } from '../helpers/cli.js';
import { ROOT } from '../helpers/paths.js';

const LAB = 'labs/three-nodes.yaml';
const FLOW_CLIENT = `${ROOT}test/e2e/fixtures/flow-client.mjs`;
const DOWNGRADE = `${ROOT}test/e2e/fixtures/downgrade-to-0.1.mjs`;
const OLD_OBJECT = `${ROOT}build/test/tcplane-0.1.bpf.o`;
/** Admits clients to x/a's UDP 53: with x-allow, what lets y/f's flows into isolated x/a. */
const DNS_ALLOW = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: a-dns-from-clients
  namespace: x
spec:
  podSelector:
    matchLabels: {pod: a}
  ingress:
    - from:
        - namespaceSelector: {}
          podSelector:
            matchLabels: {app: client}
      ports:
        - {protocol: UDP, port: 53}
`;
const dnsAllowFile = join(tmpdir(), `tp-upgrade-dns-allow-${process.pid}.yaml`);

async function ok(args: string[]): Promise<CliResult> {
  const r = await tcplane(args);
  expect(r.code, `tcplane ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > limitMs) throw new Error(`gave up after ${limitMs} ms waiting until ${what}`);
    await sleep(50);
  }
}

/** Packets n1's programs counted into its pods (hook to_pod), by reason, from the pinned metrics map. */
function toPodCounts(): Record<string, bigint> {
  const m = BpfMap.fromPin(`${nodeBpffs('n1')}/maps/tp_metrics_v2`);
  try {
    const out: Record<string, bigint> = {};
    const key = Buffer.alloc(4);
    for (const r of Object.values(TP_REASON)) {
      if (r <= 0 || r >= TP_REASON.TP_REASON_MAX) continue;
      key.writeUInt32LE(TP_HOOK.TP_HOOK_TO_POD * TP_REASON.TP_REASON_MAX + r);
      const n = (m.lookupPerCpu(key) ?? []).reduce((sum, slot) => sum + slot.readBigUInt64LE(0), 0n);
      if (n > 0n) out[reasonName(r)] = n;
    }
    return out;
  } finally {
    m.close();
  }
}

/** Who reaches x/a (isolated; web: clients may reach TCP 80) on TCP 80. */
async function reachA(): Promise<Record<string, boolean>> {
  const rows = JSON.parse((await ok(['lab', 'probe', '--json', '--ports', '80', '--protocols', 'TCP', '--timeout-ms', '300'])).stdout) as ProbeRow[];
  return Object.fromEntries(rows.filter((r) => r.to === 'x/a' && r.from !== 'x/a').map((r) => [r.from, r.connected]));
}

describe('upgrade e2e', () => {
  beforeAll(async () => {
    if (!existsSync(`${ROOT}dist/src/cli/main.js`)) throw new Error('run `make build` first');
    await tcplane(['lab', 'down']);
    await ok(['lab', 'up', '-f', LAB]);
    writeFileSync(dnsAllowFile, DNS_ALLOW);
    await ok(['apply', '-f', `${ROOT}test/e2e/fixtures/x-default-deny.yaml`, '-f', `${ROOT}test/e2e/fixtures/x-allow.yaml`, '-f', dnsAllowFile, '--wait']);
  });
  afterAll(async () => {
    await tcplane(['lab', 'down']);
    rmSync(dnsAllowFile, { force: true });
  });

  it("upgrade e2e - a node on tcplane 0.1 is upgraded under live flows: none loses a packet, policy holds throughout", async () => {
    const state = await readLabState();
    const n1 = state.nodes.find((n) => n.name === 'n1')!;
    const ip = (key: string) => state.pods.find((p) => p.key === key)!.ip;
    const before = await reachA();
    expect(Object.values(before).some((c) => !c) && Object.values(before).some((c) => c)).toBe(true);

    // n1 goes back to 0.1: its agent stops, its maps and programs become 0.1's.
    const agent = state.processes.find((p) => p.role === 'agent' && p.name === 'n1')!;
    process.kill(agent.pid, 'SIGTERM');
    await until(async () => !(await isAlive(agent.pid)), "n1's agent exits");
    const down = await run('nsenter', [`--net=/run/netns/${n1.netns}`, '--', process.execPath, DOWNGRADE, nodeBpffs('n1'), OLD_OBJECT]);
    expect(JSON.parse(down.stdout).endpoints).toBe(3);
    expect(existsSync(`${nodeBpffs('n1')}/maps/tp_ct_v1`)).toBe(true);
    expect(existsSync(`${nodeBpffs('n1')}/maps/tp_ct_v2`)).toBe(false);
    expect(await reachA(), '0.1 enforces the same policy').toEqual(before);

    // Live flows from y/f (on n2) into isolated x/a, admitted by policy and recorded in
    // 0.1's conntrack: TCP 80 and UDP 53.
    const control = join(tmpdir(), `tp-upgrade-${process.pid}`);
    const flows: Promise<CliResult>[] = [];
    let upgraded: { pid: number } | undefined;
    try {
      flows.push(tcplane(['lab', 'exec', 'y/f', '--', process.execPath, FLOW_CLIENT, 'tcp', ip('x/a'), '80', `${control}-tcp`]));
      flows.push(tcplane(['lab', 'exec', 'y/f', '--', process.execPath, FLOW_CLIENT, 'udp', ip('x/a'), '53', `${control}-udp`]));
      await until(() => existsSync(`${control}-tcp.ready`) && existsSync(`${control}-udp.ready`), 'both flows echo');
      await sleep(200);

      upgraded = await startAgent(n1, state.natsUrl);
      await until(() => existsSync(agentLog('n1')) && readFileSync(agentLog('n1'), 'utf8').includes('conntrack migrated from tp_ct_v1 to tp_ct_v2'), 'the new agent migrates conntrack');
      expect(existsSync(`${nodeBpffs('n1')}/maps/tp_ct_v1`), "0.1's table is unpinned").toBe(false);
      expect(existsSync(`${nodeBpffs('n1')}/maps/tp_ct_v2`)).toBe(true);
      await sleep(500); // the flows go on through the new programs

      for (const f of ['tcp', 'udp']) writeFileSync(`${control}-${f}.stop`, '');
      for (const [i, r] of (await Promise.all(flows)).entries()) {
        expect(r.code, r.stderr).toBe(0);
        const flow = JSON.parse(r.stdout) as { sent: number; echoed: number; lost: number[]; error: string | null; stoppedBy: string };
        console.log(`across the upgrade, flow ${i === 0 ? 'TCP y/f → x/a:80' : 'UDP y/f → x/a:53'}: ${flow.echoed}/${flow.sent} echoed`);
        expect(flow.stoppedBy, `flow ${i}`).toBe('stop file');
        expect(flow.error, `flow ${i}`).toBeNull();
        expect(flow.lost, `flow ${i}`).toEqual([]);
        expect(flow.sent).toBeGreaterThan(20);
      }
      // Every packet the new programs let into n1's pods came through conntrack: none was
      // judged as a new connection, which is what the flows' next packets would have been
      // without the migration (0.1's metrics were tp_metrics_v1: these are the new
      // programs' alone, and nothing else connected to n1's pods meanwhile).
      const counted = toPodCounts();
      expect(counted.pass_policy ?? 0n, JSON.stringify(counted, (_, v) => (typeof v === 'bigint' ? String(v) : v))).toBe(0n);
      expect(counted.pass_established ?? 0n).toBeGreaterThan(20n);
      expect(await reachA(), 'the policy holds on the new agent').toEqual(before);
    } finally {
      if (!upgraded && !(await isAlive(agent.pid))) await startAgent(n1, state.natsUrl).catch(() => undefined);
      for (const f of ['tcp', 'udp']) writeFileSync(`${control}-${f}.stop`, '');
      await Promise.allSettled(flows);
      for (const f of ['tcp', 'udp']) for (const s of ['ready', 'stop']) rmSync(`${control}-${f}.${s}`, { force: true });
    }
  });
});
