// Upgrading an agent from tcplane 0.1 (conntrack in tp_ct_v1) to this one (tp_ct_v2):
// the old datapath (test/fixtures/bpf-0.1, built as released) is loaded and pinned as
// the old agent left it, with tcx links on a veth, connections are opened through it,
// then the new datapath is opened on the same pins. Every connection the old programs
// recorded — before the upgrade, and during it, while an old program still runs — keeps
// its packets flowing, new connections are judged by the same policy throughout, and
// once the migration ends the old table is no longer consulted.
// Needs root (BPF_PROG_TEST_RUN, tcx, bpffs) and `make` first; makes a tp- veth pair and
// pins under /sys/fs/bpf/tp-test-upgrade-*, removed afterwards.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBpffs } from '../../src/bpf/bpffs.js';
import { ifindexOf, TcxLink } from '../../src/bpf/link.js';
import { BpfObject, type BpfProgram } from '../../src/bpf/object.js';
import { testRun, TC_ACT } from '../../src/bpf/testrun.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import { reasonName } from '../../src/datapath/reasons.js';
import * as S from '../../src/datapath/structs.js';
import type { StructCodec } from '../../src/codec/struct.js';
import { addrBytes } from '../../src/datapath/addr.js';
import { compile } from '../../src/policy/compile.js';
import { inputOf, netpol, type PodSpec } from '../helpers/cluster.js';
import { eth } from '../helpers/packet.js';
import { OBJECT_PATH, ROOT } from '../helpers/paths.js';

const OLD_OBJECT = `${ROOT}build/test/tcplane-0.1.bpf.o`;
const dev = `tp-up${process.pid % 10000}`;
const pinDir = `/sys/fs/bpf/tp-test-upgrade-${process.pid}`;

const A = '10.244.1.10'; // x/a: isolated, admits x/c on TCP 80
const C = '10.244.2.10'; // x/c on another node
const WORLD = '192.0.2.1';
const pods: PodSpec[] = [
  { ns: 'x', name: 'a', ip: A, labels: { app: 'a' }, identity: 300, local: { id: 11 } },
  { ns: 'x', name: 'c', ip: C, labels: { app: 'c' }, identity: 302 },
];
const policies = [
  netpol('x', 'deny-all'),
  netpol('x', 'allow-c', {
    podSelector: { matchLabels: { app: 'a' }, matchExpressions: [] },
    ingress: [{ from: [{ podSelector: { matchLabels: { app: 'c' }, matchExpressions: [] } }], ports: [{ protocol: 'TCP', port: 80 }] }],
  }),
];

const tcp = (src: string, dst: string, sport: number, dport: number, flags: string) =>
  eth().ipv4({ src, dst }).tcp({ sport, dport, flags }).build();

let ifindex = 0;
beforeAll(() => {
  ensureBpffs();
  execFileSync('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`]);
  execFileSync('ip', ['link', 'set', dev, 'up']);
  ifindex = ifindexOf(dev);
});
afterAll(() => {
  try {
    execFileSync('ip', ['link', 'del', dev], { stdio: 'pipe' });
  } catch {
    /* already gone */
  }
  rmSync(pinDir, { recursive: true, force: true });
});

/** What tcplane 0.1's agent left behind: pinned maps holding the compiled policy, pinned tcx links. */
function startOldAgent(): BpfObject {
  const old = BpfObject.load(OLD_OBJECT, { pinDir: `${pinDir}/maps` });
  const desired = compile(inputOf(pods, policies));
  const write = <K, V>(name: string, k: StructCodec<K>, v: StructCodec<V>, entries: { key: K; value: V }[]) => {
    const m = old.map(name).typed(k, v);
    for (const e of entries) m.update(e.key, e.value);
  };
  write('tp_endpoints_v1', S.tpIpKey, S.tpEndpoint, desired.endpoints);
  write('tp_ipcache_v1', S.tpIpKey, S.tpIpcacheValue, desired.ipcache);
  write('tp_policy_v1', S.tpPolicyKey, S.tpPolicyValue, desired.policy);
  mkdirSync(`${pinDir}/links`, { recursive: true });
  for (const [dir, prog] of [['ingress', 'tp_from_pod'], ['egress', 'tp_to_pod']] as const) {
    const link = TcxLink.attach(old.program(prog), ifindex, dir);
    link.pin(`${pinDir}/links/${ifindex}-${dir}`);
    link.close();
  }
  return old;
}

/** Runs a frame; the reason the shared metrics map counted for it. */
function reasonOf(dp: NodeDatapath, prog: BpfProgram, frame: Buffer): string {
  const total = () => new Map(dp.readMetrics().map((r) => [`${r.direction}/${r.reason}`, r.packets]));
  const before = total();
  const r = testRun(prog, frame);
  const grew = [...total()].filter(([k, n]) => n !== (before.get(k) ?? 0n)).map(([k]) => reasonName(Number(k.split('/')[1])));
  expect(grew, 'one reason counted').toHaveLength(1);
  expect(r.retval, grew[0]).toBe(grew[0]!.startsWith('pass_') ? TC_ACT.UNSPEC : TC_ACT.SHOT);
  return grew[0]!;
}

describe('upgrade - from tcplane 0.1', () => {
  it('upgrade - connections the old datapath recorded, before and during the upgrade, keep passing; policy holds throughout', () => {
    const old = startOldAgent();
    let dp: NodeDatapath | undefined;
    try {
      const oldFrom = old.program('tp_from_pod');
      const oldTo = old.program('tp_to_pod');
      // Before: x/a opens a connection to the world; x/c opens one to x/a:80 (allowed).
      expect(testRun(oldFrom, tcp(A, WORLD, 40001, 443, 'S')).retval).toBe(TC_ACT.UNSPEC);
      expect(testRun(oldTo, tcp(C, A, 40002, 80, 'S')).retval).toBe(TC_ACT.UNSPEC);

      dp = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir, attachMode: 'tcx' });
      expect(dp.migrating).toBe(true);
      expect(dp.obj.adoptedMaps).toEqual(expect.arrayContaining(['tp_ct_v1', 'tp_endpoints_v1', 'tp_ipcache_v1', 'tp_policy_v1']));
      // The pinned links now run the new programs (swapped in place, never detached).
      for (const [dir, prog] of [['ingress', 'tp_from_pod'], ['egress', 'tp_to_pod']] as const) {
        const link = TcxLink.adopt(`${pinDir}/links/${ifindex}-${dir}`)!;
        expect(link.programId(), dir).toBe(dp.obj.program(prog).id());
        link.close();
      }
      const newTo = dp.obj.program('tp_to_pod');
      expect(reasonOf(dp, newTo, tcp(WORLD, A, 443, 40001, 'SA'))).toBe('pass_reply');
      expect(reasonOf(dp, newTo, tcp(C, A, 40002, 80, 'A'))).toBe('pass_established');

      // During: an old program still running (a hook not swapped yet) records one more.
      expect(testRun(oldFrom, tcp(A, WORLD, 40003, 443, 'S')).retval).toBe(TC_ACT.UNSPEC);
      expect(reasonOf(dp, newTo, tcp(WORLD, A, 443, 40003, 'SA'))).toBe('pass_reply');
      expect(dp.ct.lookup({ pod_addr: ip4(A), peer_addr: ip4(WORLD), pod_port: 40003, peer_port: 443, endpoint_id: 11, protocol: 6, family: 4 }), 'moved into tp_ct_v2').toBeDefined();
      // The same policy decides new connections: never a moment unenforced.
      expect(reasonOf(dp, newTo, tcp(WORLD, A, 9, 80, 'S'))).toBe('drop_policy_default');
      expect(reasonOf(dp, newTo, tcp(C, A, 40005, 80, 'S'))).toBe('pass_policy');

      dp.finishMigration();
      expect(dp.migrating).toBe(false);
      expect(existsSync(`${pinDir}/maps/tp_ct_v1`)).toBe(false);
      expect(dp.config.lookup(0)?.ct_legacy).toBe(0);
      // After: tp_ct_v1 is no longer consulted (nothing but a stale old program could write it).
      expect(testRun(oldFrom, tcp(A, WORLD, 40004, 443, 'S')).retval).toBe(TC_ACT.UNSPEC);
      expect(reasonOf(dp, newTo, tcp(WORLD, A, 443, 40004, 'SA'))).toBe('drop_policy_default');
    } finally {
      dp?.close();
      old.close();
    }

    // The next start of the new agent has nothing to migrate and adopts tp_ct_v2 as is.
    const again = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir, attachMode: 'tcx' });
    try {
      expect(again.migrating).toBe(false);
      expect(again.obj.adoptedMaps).toContain('tp_ct_v2');
      expect(again.obj.adoptedMaps).not.toContain('tp_ct_v1');
      expect(existsSync(`${pinDir}/maps/tp_ct_v1`)).toBe(false);
      expect(reasonOf(again, again.obj.program('tp_to_pod'), tcp(WORLD, A, 443, 40001, 'A'))).toBe('pass_reply');
      again.detach(ifindex);
    } finally {
      again.close();
    }
  });
});

const ip4 = (s: string) => addrBytes(s).addr;
