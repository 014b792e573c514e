// Service allocation against a real nats-server (JetStream), started by the test:
// ClusterIPs, node ports and port ids claimed with KV create, all or nothing.
import { beforeEach, describe, expect, it } from 'vitest';
import { Allocator, claimKey, claimsOf, serviceRange } from '../../src/services/allocate.js';
import { ensureClusterConfig, newClusterConfig } from '../../src/services/cluster-config.js';
import { parseServiceText } from '../../src/services/parse.js';
import type { Service } from '../../src/services/types.js';
import { allocationClaim, type ClusterConfig } from '../../src/store/schema.js';
import type { Store } from '../../src/store/store.js';
import { natsStores } from '../helpers/nats-stores.js';

const store = natsStores();

/** A small range makes collisions likely: 10.96.0.0/28 has 14 usable addresses. */
const config: ClusterConfig = { ...newClusterConfig({ serviceCIDRs: ['10.96.0.0/28'], nodePortRange: { min: 30000, max: 30009 } }) };
/** The same, dual-stack: fd00:10:96::/124 has 15 usable addresses (no broadcast in IPv6). */
const dual: ClusterConfig = { ...newClusterConfig({ serviceCIDRs: ['10.96.0.0/28', 'fd00:10:96::/124'], nodePortRange: { min: 30000, max: 30009 } }) };

const svc = (name: string, extra = '', spec = ''): Service =>
  parseServiceText(
    `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: x}
spec:
  selector: {app: ${name}}
${spec}  ports: [{port: 80${extra}}]
`,
    't.yaml',
  )[0]!;

async function clear(s: Store): Promise<void> {
  for (const k of (await s.list('allocations', allocationClaim)).entries.keys()) await s.delete('allocations', k);
}

describe('service allocate', () => {
  let s: Store;
  beforeEach(async () => {
    s = await store();
    await clear(s);
  });

  it('service allocate - a ClusterIP and a port id are allocated from the range, and claimed in the store', async () => {
    const a = await Allocator.load(s, config, []);
    const r = await a.allocate(svc('web'), undefined);
    expect(r.problems).toEqual([]);
    const ip = r.service.clusterIPs[0]!;
    const { first, count } = serviceRange(config.serviceCIDR);
    expect(count).toBe(14);
    const n = BigInt(ip.split('.').reduce((x, o) => x * 256 + Number(o), 0));
    expect(n).toBeGreaterThanOrEqual(first);
    expect(n).toBeLessThan(first + BigInt(count));
    expect(r.service.ipFamilies).toEqual(['IPv4']);
    expect(r.service.ports[0]!.id).toBe(1);
    const claims = (await s.list('allocations', allocationClaim)).entries;
    expect([...claims.keys()].sort()).toEqual(claimsOf(r.service).sort());
    expect(claims.get(claimKey.clusterIP(ip))!.value.owner).toBe('x/web');
  });

  it('service allocate - re-applying keeps every allocation; a ClusterIP cannot change', async () => {
    const a = await Allocator.load(s, config, []);
    const first = (await a.allocate(svc('web', ', nodePort: 30005', '  type: NodePort\n'), undefined)).service;
    const again = await a.allocate(svc('web', '', '  type: NodePort\n'), first);
    expect(again.problems).toEqual([]);
    expect(again.service.clusterIPs).toEqual(first.clusterIPs);
    expect(again.service.ports).toEqual(first.ports);
    const other = first.clusterIPs[0] === '10.96.0.1' ? '10.96.0.2' : '10.96.0.1';
    const moved = await a.allocate(svc('web', '', `  clusterIP: ${other}\n`), first);
    expect(moved.problems).toEqual([{ paths: [['spec', 'clusterIP'], ['spec', 'clusterIPs', 0]], detail: expect.stringContaining('field is immutable') }]);
  });

  it('service allocate - a taken or out-of-range value is a problem at its field, and the claims made are withdrawn', async () => {
    const a = await Allocator.load(s, config, []);
    const web = (await a.allocate(svc('web', ', nodePort: 30001', '  type: NodePort\n  clusterIP: 10.96.0.5\n'), undefined)).service;
    const before = [...(await s.list('allocations', allocationClaim)).entries.keys()].sort();
    const r = await a.allocate(svc('api', ', nodePort: 30001', '  type: NodePort\n'), undefined);
    expect(r.problems).toEqual([{ paths: [['spec', 'ports', 0, 'nodePort']], detail: '30001 is already allocated to service x/web' }]);
    // The ClusterIP and port id it claimed on the way are free again.
    expect([...(await s.list('allocations', allocationClaim)).entries.keys()].sort()).toEqual(before);
    const ip = await a.allocate(svc('db', '', '  clusterIP: 10.96.0.5\n'), undefined);
    expect(ip.problems[0]!.detail).toBe('10.96.0.5 is already allocated to service x/web');
    const range = await a.allocate(svc('db', ', nodePort: 31000', '  type: NodePort\n  clusterIP: 10.97.0.1\n'), undefined);
    expect(range.problems.map((p) => p.detail)).toEqual([
      "10.97.0.1 is not in the cluster's IPv4 service range 10.96.0.0/28",
      "31000 is outside the cluster's node port range 30000-30009",
    ]);
    expect(web.ports[0]!.nodePort).toBe(30001);
  });

  it('service allocate - two writers at once never get the same value (KV create decides)', async () => {
    const [s1, s2] = [await store(), await store()];
    // Two "apply" processes, each with its own allocator, race for the same 14 addresses.
    const a1 = await Allocator.load(s1, config, []);
    const a2 = await Allocator.load(s2, config, []);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? a2 : a1).allocate(svc(`s${i}`, '', '  type: NodePort\n'), undefined)),
    );
    const ok = results.filter((r) => r.problems.length === 0).map((r) => r.service);
    const ips = ok.map((x) => x.clusterIPs[0]);
    const ports = ok.map((x) => x.ports[0]!.nodePort);
    const ids = ok.map((x) => x.ports[0]!.id);
    expect(new Set(ips).size).toBe(ips.length);
    expect(new Set(ports).size).toBe(ports.length);
    expect(new Set(ids).size).toBe(ids.length);
    // Only 10 node ports exist: exactly 10 services got one, the others were told.
    expect(ok).toHaveLength(10);
    for (const r of results.filter((x) => x.problems.length > 0)) expect(r.problems[0]!.detail).toMatch(/no free node port left in 30000-30009/);
    // Every claim in the store belongs to a service that got it.
    const claims = (await s.list('allocations', allocationClaim)).entries;
    expect(claims.size).toBe(ok.length * 3);
  });

  it('service allocate - a claim left by an apply that never finished is taken over after a minute, a fresh one is not', async () => {
    const stale = { v: 1, owner: 'x/gone', createdAt: new Date(Date.now() - 120_000).toISOString() };
    const fresh = { v: 1, owner: 'x/busy', createdAt: new Date().toISOString() };
    await s.put('allocations', claimKey.clusterIP('10.96.0.7'), stale);
    await s.put('allocations', claimKey.clusterIP('10.96.0.8'), fresh);
    const a = await Allocator.load(s, config, []);
    expect((await a.allocate(svc('web', '', '  clusterIP: 10.96.0.7\n'), undefined)).problems).toEqual([]);
    expect((await a.allocate(svc('api', '', '  clusterIP: 10.96.0.8\n'), undefined)).problems[0]!.detail).toBe('10.96.0.8 is already allocated to service x/busy');
  });

  it('service allocate - a health-check node port for Local load balancers, and none for others', async () => {
    const a = await Allocator.load(s, config, []);
    const lb = (await a.allocate(svc('lb', '', '  type: LoadBalancer\n  externalTrafficPolicy: Local\n'), undefined)).service;
    expect(lb.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
    expect(lb.healthCheckNodePort).not.toBe(lb.ports[0]!.nodePort);
    const cl = (await a.allocate(svc('cl', '', '  type: LoadBalancer\n'), undefined)).service;
    expect(cl.healthCheckNodePort).toBeUndefined();
    const noPorts = (await a.allocate(svc('np', '', '  type: LoadBalancer\n  allocateLoadBalancerNodePorts: false\n'), undefined)).service;
    expect(noPorts.ports[0]!.nodePort).toBeUndefined();
  });

  it('service allocate - headless services hold no address', async () => {
    const a = await Allocator.load(s, config, []);
    const h = (await a.allocate(svc('h', '', '  clusterIP: None\n'), undefined)).service;
    expect(h.clusterIPs).toEqual(['None']);
    expect(claimsOf(h)).toEqual([claimKey.portId(h.ports[0]!.id!)]);
  });
});

describe('service allocate - dual-stack', () => {
  let s: Store;
  beforeEach(async () => {
    s = await store();
    await clear(s);
  });
  const inRange6 = (ip: string) => /^fd00:10:96::[1-9a-f]$/.test(ip);

  it('service allocate - families follow ipFamilyPolicy and the cluster: SingleStack one, PreferDualStack both here, RequireDualStack both', async () => {
    const a = await Allocator.load(s, dual, []);
    const single = await a.allocate(svc('one'), undefined);
    expect(single.problems).toEqual([]);
    expect(single.service.ipFamilies).toEqual(['IPv4']);
    expect(single.service.clusterIPs).toHaveLength(1);
    const prefer = (await a.allocate(svc('two', '', '  ipFamilyPolicy: PreferDualStack\n'), undefined)).service;
    expect(prefer.ipFamilies).toEqual(['IPv4', 'IPv6']);
    expect(prefer.clusterIPs[0]).toMatch(/^10\.96\.0\./);
    expect(inRange6(prefer.clusterIPs[1]!)).toBe(true);
    const v6first = (await a.allocate(svc('six', '', '  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6]\n'), undefined)).service;
    expect(v6first.ipFamilies).toEqual(['IPv6', 'IPv4']);
    expect(inRange6(v6first.clusterIPs[0]!)).toBe(true);
    const only6 = (await a.allocate(svc('only6', '', '  ipFamilies: [IPv6]\n'), undefined)).service;
    expect(only6.ipFamilies).toEqual(['IPv6']);
    expect(only6.clusterIPs).toHaveLength(1);
    // Claimed under keys KV accepts; claimsOf names them all.
    const claims = (await s.list('allocations', allocationClaim)).entries;
    expect(claims.get(claimKey.clusterIP(prefer.clusterIPs[1]!))!.value.owner).toBe('x/two');
    expect(claimKey.clusterIP('fd00:10:96::a')).toBe('clusterip/fd00-10-96--a');
    // Headless: families decided, no addresses.
    const headless = (await a.allocate(svc('h', '', '  clusterIP: None\n  ipFamilyPolicy: PreferDualStack\n'), undefined)).service;
    expect(headless.clusterIPs).toEqual(['None']);
    expect(headless.ipFamilies).toEqual(['IPv4', 'IPv6']);
  });

  it('service allocate - given IPv6 cluster IPs are checked against the IPv6 range; the primary family and a set IP cannot change', async () => {
    const a = await Allocator.load(s, dual, []);
    const given = await a.allocate(svc('web', '', '  clusterIPs: ["fd00:10:96::5", 10.96.0.5]\n'), undefined);
    expect(given.problems).toEqual([]);
    expect(given.service).toMatchObject({ ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'RequireDualStack', clusterIPs: ['fd00:10:96::5', '10.96.0.5'] });
    const outside = await a.allocate(svc('far', '', '  clusterIP: "fd00:10:97::5"\n'), undefined);
    expect(outside.problems).toEqual([{ paths: [['spec', 'clusterIP'], ['spec', 'clusterIPs', 0]], detail: "fd00:10:97::5 is not in the cluster's IPv6 service range fd00:10:96::/124" }]);
    const taken = await a.allocate(svc('again', '', '  clusterIP: "fd00:10:96::5"\n'), undefined);
    expect(taken.problems.map((p) => p.detail)).toEqual(['fd00:10:96::5 is already allocated to service x/web']);
    const flipped = await a.allocate(svc('web', '', '  ipFamilies: [IPv4]\n'), given.service);
    expect(flipped.problems.map((p) => p.detail)).toContain('the primary family is immutable: the service is IPv6; delete it first to change it');
    // Dropping to SingleStack keeps the primary and lets the secondary go.
    const down = await a.allocate(svc('web', '', '  ipFamilyPolicy: SingleStack\n'), given.service);
    expect(down.problems).toEqual([]);
    expect(down.service.clusterIPs).toEqual(['fd00:10:96::5']);
    expect(claimsOf(down.service)).not.toContain(claimKey.clusterIP('10.96.0.5'));
  });

  it('service allocate - an update that names no ipFamilyPolicy keeps the stored one: a re-apply never drops a family', async () => {
    const a = await Allocator.load(s, dual, []);
    const first = (await a.allocate(svc('web', '', '  ipFamilyPolicy: PreferDualStack\n'), undefined)).service;
    expect(first.clusterIPs).toHaveLength(2);
    const again = await a.allocate(svc('web'), first);
    expect(again.problems).toEqual([]);
    expect(again.service).toMatchObject({ ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv4', 'IPv6'], clusterIPs: first.clusterIPs });
    // A create that names none is SingleStack.
    expect((await a.allocate(svc('fresh'), undefined)).service).toMatchObject({ ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'] });
  });

  it('service allocate - a single-stack cluster refuses IPv6 and RequireDualStack, and gives PreferDualStack one family', async () => {
    const a = await Allocator.load(s, config, []);
    const v6 = await a.allocate(svc('six', '', '  ipFamilies: [IPv6]\n'), undefined);
    expect(v6.problems).toEqual([{ paths: [['spec', 'ipFamilies', 0], ['spec', 'clusterIPs', 0], ['spec', 'clusterIP']], detail: 'IPv6 is not configured on this cluster (its service range: 10.96.0.0/28)' }]);
    const req = await a.allocate(svc('req', '', '  ipFamilyPolicy: RequireDualStack\n'), undefined);
    expect(req.problems.map((p) => p.detail)).toEqual(['RequireDualStack needs a dual-stack cluster; this one has only the IPv4 service range 10.96.0.0/28']);
    // ipFamilies names one, clusterIPs a second: the second's family is inferred (and refused here).
    const partial = await a.allocate(svc('part', '', '  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4]\n  clusterIPs: [10.96.0.3, "fd00:10:96::3"]\n'), undefined);
    expect(partial.problems.map((p) => [p.paths[0], p.detail])).toEqual([[['spec', 'ipFamilies', 1], 'IPv6 is not configured on this cluster (its service range: 10.96.0.0/28)']]);
    const prefer = await a.allocate(svc('pre', '', '  ipFamilyPolicy: PreferDualStack\n'), undefined);
    expect(prefer.problems).toEqual([]);
    expect(prefer.service.ipFamilies).toEqual(['IPv4']);
    // Nothing is left claimed by the refused ones.
    const owners = [...(await s.list('allocations', allocationClaim)).entries.values()].map((e) => e.value.owner);
    expect(new Set(owners)).toEqual(new Set(['x/pre']));
  });
});

describe('service allocate - cluster config', () => {
  it('service allocate - the first writer creates the cluster config; everyone after reads the same one', async () => {
    const [s1, s2] = [await store(), await store()];
    for (const k of ['config']) await s1.delete('cluster', k).catch(() => undefined);
    const [a, b] = await Promise.all([ensureClusterConfig(s1, { serviceCIDRs: ['10.100.0.0/16'] }), ensureClusterConfig(s2, { serviceCIDRs: ['10.200.0.0/16'] })]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.config).toEqual(b.config);
    expect(a.config.maglevSeed).toBeGreaterThanOrEqual(0);
    expect(() => newClusterConfig({ maglevMaxTableSize: 1000 })).toThrow(/maglevMaxTableSize: must be one of the Maglev table sizes/);
    expect(() => newClusterConfig({ serviceCIDRs: ['10.96.0.0/12', '10.97.0.0/16'] })).toThrow(/one range per family/);
    expect(() => newClusterConfig({ serviceCIDRs: ['fd00:10:96::/112'] })).toThrow(/serviceCIDR: not an IPv4 CIDR/);
    expect(() => newClusterConfig({ serviceCIDRs: ['10.96.0.0/12', 'fd00:10:96::/64'] })).toThrow(/fd00:10:96::\/64 is too large: at most 20 host bits \(\/108\)/);
    expect(newClusterConfig({ serviceCIDRs: ['10.96.0.0/12', 'fd00:10:96::/108'] }).serviceCIDRs).toEqual(['10.96.0.0/12', 'fd00:10:96::/108']);
  });
});
