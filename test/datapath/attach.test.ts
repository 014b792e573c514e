// tc attachment: tcx links (pinned, adopted, swapped in place) and the clsact fallback,
// each removing only what it made. Needs root: creates a tp- veth pair in the test's
// network namespace and pins under /sys/fs/bpf/tp-test-*; both are removed afterwards.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBpffs } from '../../src/bpf/bpffs.js';
import { ifindexOf, TcxLink } from '../../src/bpf/link.js';
import { BpfObject } from '../../src/bpf/object.js';
import { addrBytes } from '../../src/datapath/addr.js';
import { DIR_INGRESS, TP_CT_ENDPOINT, TP_CT_FLAGS, TP_CT_NAT, TP_FAMILY } from '../../src/datapath/constants.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import type { TpCtEntry, TpCtKey } from '../../src/datapath/structs.js';
import { PROGRAM_NAMES } from '../../src/gen/bpf-names.js';
import { BENCH_EMPTY_PATH, OBJECT_PATH } from '../helpers/paths.js';

const dev = `tp-at${process.pid % 10000}`;
const pinDir = `/sys/fs/bpf/tp-test-attach-${process.pid}`;
let ifindex = 0;
// `tc filter add … bpf obj` makes iproute2's bpffs dir tc/globals and the links ip and
// xdp to it when missing; remove them afterwards if this test made them and they are empty.
const iproute2Links = ['/sys/fs/bpf/ip', '/sys/fs/bpf/xdp'];
const iproute2Dirs = ['/sys/fs/bpf/tc/globals', '/sys/fs/bpf/tc'];
const preexisting = new Set([...iproute2Links, ...iproute2Dirs].filter((d) => existsSync(d)));

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
const tcFilters = (dir: 'ingress' | 'egress') => execFileSync('tc', ['filter', 'show', 'dev', dev, dir], { encoding: 'utf8' });

beforeAll(() => {
  ensureBpffs();
  ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`);
  ip('link', 'set', dev, 'up');
  ifindex = ifindexOf(dev);
});
afterAll(() => {
  try {
    ip('link', 'del', dev);
  } catch {
    /* already gone */
  }
  rmSync(pinDir, { recursive: true, force: true });
  if (!existsSync('/sys/fs/bpf/tc/globals') || readdirSync('/sys/fs/bpf/tc/globals').length > 0) return;
  for (const l of iproute2Links) if (!preexisting.has(l)) rmSync(l, { force: true });
  for (const d of iproute2Dirs) if (!preexisting.has(d) && readdirSync(d).length === 0) rmdirSync(d);
});

describe('attach - tcx', () => {
  it('attach - tcx links are pinned, adopted by the next datapath and swapped to its programs', () => {
    // The program each pinned link runs now, and the programs of a datapath, by hook.
    const running = () =>
      Object.fromEntries(
        (['ingress', 'egress'] as const).map((dir) => {
          const link = TcxLink.adopt(`${pinDir}/links/${ifindex}-${dir}`)!;
          try {
            return [dir, link.programId()];
          } finally {
            link.close();
          }
        }),
      );
    const programsOf = (d: NodeDatapath) => ({ ingress: d.obj.program(PROGRAM_NAMES.tp_from_pod).id(), egress: d.obj.program(PROGRAM_NAMES.tp_to_pod).id() });
    const first = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir, attachMode: 'tcx' });
    first.attach(ifindex);
    expect(readdirSync(`${pinDir}/links`).sort()).toEqual([`${ifindex}-egress`, `${ifindex}-ingress`]);
    const firstPrograms = programsOf(first);
    expect(running()).toEqual(firstPrograms);
    first.close();

    const second = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir, attachMode: 'tcx' });
    try {
      expect(second.attachedInterfaces()).toEqual([ifindex]);
      second.attach(ifindex); // idempotent: already adopted
      expect(readdirSync(`${pinDir}/links`)).toHaveLength(2);
      // The same links, now running the second datapath's programs.
      expect(running()).toEqual(programsOf(second));
      expect(programsOf(second).ingress).not.toBe(firstPrograms.ingress);
      second.detach(ifindex);
      expect(readdirSync(`${pinDir}/links`)).toEqual([]);
      expect(second.attachedInterfaces()).toEqual([]);
    } finally {
      second.close();
    }
  });

  it('attach - another tcx program on the same hook keeps running after ours is detached', () => {
    const other = BpfObject.load(BENCH_EMPTY_PATH);
    const foreign = TcxLink.attach(other.program('tp_bench_empty'), ifindex, 'ingress');
    let dp: NodeDatapath | undefined;
    try {
      foreign.pin(`${pinDir}-foreign`);
      dp = NodeDatapath.open({ objectPath: OBJECT_PATH, attachMode: 'tcx' });
      dp.attach(ifindex);
      dp.detach(ifindex);
      const still = TcxLink.adopt(`${pinDir}-foreign`);
      expect(still?.ifindex).toBe(ifindex);
      still?.close();
    } finally {
      // Also when the test fails (the datapath refused to load): no link or pin outlives it.
      dp?.close();
      foreign.detach();
      other.close();
      rmSync(`${pinDir}-foreign`, { force: true });
    }
  });
});

describe('attach - clsact', () => {
  it('attach - clsact filters are replaced in place and detaching leaves other filters alone', () => {
    execFileSync('tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
    // Another tc user's filter (loaded by tc itself) at its own priority.
    execFileSync('tc', ['filter', 'add', 'dev', dev, 'ingress', 'prio', '50', 'handle', '1', 'bpf', 'da', 'obj', BENCH_EMPTY_PATH, 'sec', 'tc']);
    const first = NodeDatapath.open({ objectPath: OBJECT_PATH, attachMode: 'clsact' });
    first.attach(ifindex);
    first.close();
    expect(tcFilters('ingress')).toMatch(/tp_from_pod/);
    expect(tcFilters('egress')).toMatch(/tp_to_pod/);

    const second = NodeDatapath.open({ objectPath: OBJECT_PATH, attachMode: 'clsact' });
    try {
      second.attach(ifindex);
      // One tcplane filter per hook (replaced, not added), and the other user's filter is still there.
      expect(tcFilters('ingress').match(/handle 0x7470 .*tp_from_pod/g)).toHaveLength(1);
      expect(tcFilters('ingress')).toMatch(/tp_bench_empty/);
      second.detach(ifindex);
      expect(tcFilters('ingress')).not.toMatch(/tp_from_pod/);
      expect(tcFilters('egress')).not.toMatch(/tp_to_pod/);
      expect(tcFilters('ingress')).toMatch(/tp_bench_empty/);
    } finally {
      second.close();
    }
    expect(existsSync(pinDir) ? readdirSync(`${pinDir}/links`) : []).toEqual([]);
  });
});

describe('attach - clsact to tcx', () => {
  it('attach - an agent moving from clsact to tcx takes its own clsact filters off, after the tcx link is in place', () => {
    const first = NodeDatapath.open({ objectPath: OBJECT_PATH, attachMode: 'clsact' });
    first.attach(ifindex);
    first.close();
    expect(tcFilters('ingress')).toMatch(/tp_from_pod/);

    const second = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir, attachMode: 'auto' });
    try {
      second.attach(ifindex);
      expect(readdirSync(`${pinDir}/links`).sort()).toEqual([`${ifindex}-egress`, `${ifindex}-ingress`]);
      expect(tcFilters('ingress')).not.toMatch(/tp_from_pod/);
      expect(tcFilters('egress')).not.toMatch(/tp_to_pod/);
      second.detach(ifindex);
      expect(readdirSync(`${pinDir}/links`)).toEqual([]);
    } finally {
      second.close();
    }
  });
});

describe('attach - uplink egress retirement', () => {
  it("attach - an earlier build's uplink egress link is taken off once the external connections it reverse-translated are marked for tp_from_pod", () => {
    const BACKEND = addrBytes('10.244.1.20');
    const OTHER = addrBytes('10.244.1.21');
    const CLIENT = addrBytes('192.0.2.1');
    const NODE = addrBytes('10.250.0.10');
    const ZERO = Buffer.alloc(16);
    const entry = (over: Partial<TpCtEntry>): TpCtEntry => ({
      expires_ns: 1n << 62n,
      rule_id: 0,
      policy_gen: 0,
      service_id: 1,
      backend_id: 1,
      flags: TP_CT_FLAGS.TP_CT_F_SEEN_REPLY,
      opened: DIR_INGRESS,
      nat: TP_CT_NAT.TP_CT_NAT_NONE,
      audit: 0,
      frontend_port: 0,
      backend_port: 0,
      frontend_addr: ZERO,
      backend_addr: ZERO,
      nat_addr: ZERO,
      nat_port: 0,
      route: 0,
      key_tag: 0,
      ...over,
    });
    const key = (pod: Buffer, peer: Buffer, endpoint_id: number, pod_port = 8080): TpCtKey => ({
      pod_addr: pod,
      peer_addr: peer,
      pod_port,
      peer_port: 40000,
      endpoint_id,
      protocol: 6,
      family: TP_FAMILY.TP_FAMILY_IPV4,
    });
    const UPLINK = TP_CT_ENDPOINT.TP_CT_EP_UPLINK;
    const rnat = entry({ nat: TP_CT_NAT.TP_CT_NAT_RNAT, flags: TP_CT_FLAGS.TP_CT_F_EXTERNAL, frontend_addr: NODE.addr, frontend_port: 30080 });

    // The earlier build's egress program on the uplink, pinned where its agent pinned it.
    const old = BpfObject.load(BENCH_EMPTY_PATH);
    const link = TcxLink.attach(old.program('tp_bench_empty'), ifindex, 'egress');
    const pin = `${pinDir}/links/uplink-${ifindex}-egress`;
    let dp: NodeDatapath | undefined;
    try {
      mkdirSync(`${pinDir}/links`, { recursive: true });
      link.pin(pin);
      dp = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir, attachMode: 'tcx' });
      expect(dp.retiring, 'found on adoption').toBe(true);
      expect(dp.uplinkInterface).toBe(ifindex);
      // What the old programs recorded: an external connection to a local backend (its
      // uplink RNAT entry and the backend's own entry), one SNATed to another node's
      // backend (nothing to mark here), and a pod's connection from outside without
      // translation.
      dp.endpoints.update({ family: BACKEND.family, addr: BACKEND.addr }, { id: 7, identity: 300, ifindex: 7, ingress_default: 0, egress_default: 0, policy_gen: 0 });
      dp.endpoints.update({ family: OTHER.family, addr: OTHER.addr }, { id: 8, identity: 301, ifindex: 8, ingress_default: 0, egress_default: 0, policy_gen: 0 });
      dp.ct.update(key(BACKEND.addr, CLIENT.addr, UPLINK), rnat);
      dp.ct.update(key(BACKEND.addr, CLIENT.addr, 7), entry({}));
      dp.ct.update(key(OTHER.addr, CLIENT.addr, UPLINK, 61000), { ...rnat, flags: rnat.flags | TP_CT_FLAGS.TP_CT_F_SNAT });
      dp.ct.update(key(OTHER.addr, CLIENT.addr, 8, 61000), entry({}));
      dp.ct.update(key(OTHER.addr, CLIENT.addr, 8), entry({}));

      expect(dp.finishRetirement(), 'connections marked').toBe(1);
      expect(dp.ct.lookup(key(BACKEND.addr, CLIENT.addr, 7))?.flags).toBe(TP_CT_FLAGS.TP_CT_F_SEEN_REPLY | TP_CT_FLAGS.TP_CT_F_OUTSIDE);
      expect(dp.ct.lookup(key(OTHER.addr, CLIENT.addr, 8, 61000))?.flags).toBe(TP_CT_FLAGS.TP_CT_F_SEEN_REPLY);
      expect(dp.ct.lookup(key(OTHER.addr, CLIENT.addr, 8))?.flags).toBe(TP_CT_FLAGS.TP_CT_F_SEEN_REPLY);
      expect(existsSync(pin), 'pin removed').toBe(false);
      expect(TcxLink.adopt(pin)).toBeNull();
      expect(dp.retiring).toBe(false);
      expect(dp.finishRetirement(), 'once').toBe(0);
    } finally {
      dp?.close();
      link.detach();
      old.close();
      rmSync(pinDir, { recursive: true, force: true });
    }
  });
});
