// Map writes as a difference, and adoption of pinned maps across agent restarts.
// Needs root (loads the BPF object, pins on bpffs) and `make` first.
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBpffs } from '../../src/bpf/bpffs.js';
import { ipKey } from '../../src/datapath/addr.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import { compile } from '../../src/policy/compile.js';
import { inputOf, netpol, type PodSpec } from '../helpers/cluster.js';
import { OBJECT_PATH } from '../helpers/paths.js';

const pods: PodSpec[] = [
  { ns: 'x', name: 'a', ip: '10.244.1.10', labels: { app: 'a' }, identity: 300, local: { id: 11 } },
  { ns: 'x', name: 'b', ip: '10.244.1.11', labels: { app: 'b' }, identity: 301, local: { id: 12 } },
  { ns: 'y', name: 'c', ip: '10.244.2.10', labels: { app: 'c' }, identity: 302 },
];
const denyX = netpol('x', 'deny-all');
const allowC = netpol('x', 'allow-c', {
  podSelector: { matchLabels: { app: 'a' }, matchExpressions: [] },
  ingress: [{ from: [{ namespaceSelector: { matchLabels: {}, matchExpressions: [] }, podSelector: { matchLabels: { app: 'c' }, matchExpressions: [] } }], ports: [{ protocol: 'TCP', port: 80 }] }],
});

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
const gen = (dp: NodeDatapath, ip: string) => dp.endpoints.lookup(ipKey(ip))!.policy_gen;

describe('sync', () => {
  it('sync - applying one more policy writes only the entries that changed', () => {
    const dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
    try {
      const first = dp.maps.sync(compile(inputOf(pods, [denyX])));
      expect(first.writes.tp_endpoints_v1).toBe(2);
      expect(first.writes.tp_ipcache_v1).toBe(4); // three pods and the host address

      const stable = dp.maps.sync(compile(inputOf(pods, [denyX])));
      expect(sum(stable.writes) + sum(stable.deletes)).toBe(0);

      const desired = compile(inputOf(pods, [denyX, allowC]));
      const before = dp.policy.raw.stats.updates;
      const second = dp.maps.sync(desired);
      // allow-c adds exactly one entry (c → a on TCP/80), and moves a's policy generation
      // (its connections are judged again); b and the ipcache are untouched.
      expect(second.writes).toEqual({ tp_policy_v1: 1, tp_ipcidr_v1: 0, tp_ipcache_v1: 0, tp_endpoints_v1: 1 });
      expect([gen(dp, '10.244.1.10'), gen(dp, '10.244.1.11')]).toEqual([1, 0]);
      expect(sum(second.deletes)).toBe(0);
      expect(dp.policy.raw.stats.updates - before).toBe(1);
      expect(dp.policy.lookup({ prefixlen: 96, endpoint_id: 11, identity: 302, direction: 0, protocol: 6, dport: 80 })).toBeDefined();

      const third = dp.maps.sync(compile(inputOf(pods, [denyX])));
      expect(third.deletes).toEqual({ tp_policy_v1: 1, tp_ipcidr_v1: 0, tp_ipcache_v1: 0, tp_endpoints_v1: 0 });
      expect(third.writes).toEqual({ tp_policy_v1: 0, tp_ipcidr_v1: 0, tp_ipcache_v1: 0, tp_endpoints_v1: 1 });
      expect([gen(dp, '10.244.1.10'), gen(dp, '10.244.1.11')]).toEqual([2, 0]);
    } finally {
      dp.close();
    }
  });

  it('sync - a relabelled peer moves its entries, and the generation of every endpoint (any may have a connection with it)', () => {
    const dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
    try {
      dp.maps.sync(compile(inputOf(pods, [denyX, allowC])));
      const relabelled = pods.map((p) => (p.name === 'c' ? { ...p, labels: { app: 'other' }, identity: 303 } : p));
      const r = dp.maps.sync(compile(inputOf(relabelled, [denyX, allowC])));
      expect(r.writes).toEqual({ tp_policy_v1: 0, tp_ipcidr_v1: 0, tp_ipcache_v1: 1, tp_endpoints_v1: 2 });
      expect(r.deletes).toEqual({ tp_policy_v1: 1, tp_ipcidr_v1: 0, tp_ipcache_v1: 0, tp_endpoints_v1: 0 });
      expect([gen(dp, '10.244.1.10'), gen(dp, '10.244.1.11')]).toEqual([1, 1]);
      // A new pod elsewhere moves nothing: no connection has judged its address yet.
      const more = [...relabelled, { ns: 'y', name: 'd', ip: '10.244.2.11', labels: { app: 'd' }, identity: 304 }];
      expect(dp.maps.sync(compile(inputOf(more, [denyX, allowC]))).writes.tp_endpoints_v1).toBe(0);
      // A new ipBlock prefix takes over the addresses it covers from a shorter one (here
      // from the world): every isolated endpoint moves, not only the one it protects.
      const docNet = netpol('x', 'from-doc-net', {
        podSelector: { matchLabels: { app: 'a' }, matchExpressions: [] },
        ingress: [{ from: [{ ipBlock: { cidr: '192.0.2.0/24', except: [] } }] }],
      });
      const was = [gen(dp, '10.244.1.10'), gen(dp, '10.244.1.11')];
      const w = dp.maps.sync(compile(inputOf(more, [denyX, allowC, docNet])));
      expect(w.writes.tp_ipcidr_v1).toBe(1);
      expect([gen(dp, '10.244.1.10'), gen(dp, '10.244.1.11')]).toEqual([was[0]! + 1, was[1]! + 1]);
    } finally {
      dp.close();
    }
  });
});

describe('sync - adoption', () => {
  const pinDir = `/sys/fs/bpf/tp-test-sync-${process.pid}`;
  afterAll(() => rmSync(pinDir, { recursive: true, force: true }));

  it('sync - a restarted datapath adopts pinned maps and rewrites nothing', () => {
    ensureBpffs();
    const desired = compile(inputOf(pods, [denyX, allowC]));
    const first = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir });
    expect(first.obj.adoptedMaps).toEqual([]);
    first.maps.sync(desired);
    first.close();

    const second = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir });
    try {
      // Every map but the migration stub for tcplane 0.1's conntrack (unpinned when unused).
      const all = second.obj.spec.maps.map((m) => m.name).filter((n) => n !== 'tp_ct_v1');
      expect([...second.obj.adoptedMaps].sort()).toEqual(all.sort());
      expect(all).toEqual(expect.arrayContaining(['tp_ct_v2', 'tp_policy_v1', 'tp_svc_v1', 'tp_lut_v1', 'tp_backends_v1']));
      const r = second.maps.sync(desired);
      expect(sum(r.writes) + sum(r.deletes)).toBe(0);
    } finally {
      second.close();
    }
  });
});
