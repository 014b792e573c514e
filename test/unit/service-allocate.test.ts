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
const config: ClusterConfig = { ...newClusterConfig({ serviceCIDR: '10.96.0.0/28', nodePortRange: { min: 30000, max: 30009 } }) };

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
    const { first, last } = serviceRange(config.serviceCIDR);
    const n = ip.split('.').reduce((x, o) => x * 256 + Number(o), 0);
    expect(n).toBeGreaterThanOrEqual(first);
    expect(n).toBeLessThanOrEqual(last);
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
      "10.97.0.1 is not in the cluster's service range 10.96.0.0/28",
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

describe('service allocate - cluster config', () => {
  it('service allocate - the first writer creates the cluster config; everyone after reads the same one', async () => {
    const [s1, s2] = [await store(), await store()];
    for (const k of ['config']) await s1.delete('cluster', k).catch(() => undefined);
    const [a, b] = await Promise.all([ensureClusterConfig(s1, { serviceCIDR: '10.100.0.0/16' }), ensureClusterConfig(s2, { serviceCIDR: '10.200.0.0/16' })]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.config).toEqual(b.config);
    expect(a.config.maglevSeed).toBeGreaterThanOrEqual(0);
    expect(() => newClusterConfig({ maglevMaxTableSize: 1000 })).toThrow(/maglevMaxTableSize: must be one of the Maglev table sizes/);
  });
});
