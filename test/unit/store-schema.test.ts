// Records arriving from the store are checked before anything compiles them into map keys.
import { describe, expect, it } from 'vitest';
import { agentOptions } from '../../agent/options.js';
import { parsePolicyText } from '../../src/policy/parse.js';
import { policyDocumentSchema, storedPolicy } from '../../src/policy/schema.js';
import { nodePodCIDRs, nodeRecord, podRecord } from '../../src/store/schema.js';

const pod = (ips: string[]) => ({
  v: 1,
  namespace: 'x',
  name: 'a',
  node: 'n1',
  labels: {},
  ips,
  ifname: 'tp-0',
  ports: [],
  ready: true,
});
const node = (podCIDR?: string, addresses = ['10.250.0.10']) => ({
  v: 1,
  name: 'n1',
  addresses,
  podCIDR,
  agentVersion: '0',
  startedAt: '2026-11-23T00:00:00Z',
});

describe('store schema', () => {
  it('store schema - pod addresses must be addresses of either family, not merely dotted numbers; IPv6 is read in its shortest form', () => {
    expect(podRecord.safeParse(pod(['10.244.1.10'])).success).toBe(true);
    expect(podRecord.parse(pod(['10.244.1.10', 'FD00:10:244:1:0:0:0:A'])).ips).toEqual(['10.244.1.10', 'fd00:10:244:1::a']);
    for (const bad of ['999.1.1.1', '10.244.1', '10.244.1.010', '10.244.1.10/32', 'fd00::1::2', 'fd00::/64', '']) {
      const r = podRecord.safeParse(pod([bad]));
      expect(r.success, bad).toBe(false);
      expect(r.error?.issues[0]?.path).toEqual(['ips', 0]);
      expect(r.error?.issues[0]?.message).toBe('not an IP address');
    }
  });

  it('store schema - node pod CIDRs and addresses are checked', () => {
    expect(nodeRecord.safeParse(node('10.244.1.0/24')).success).toBe(true);
    expect(nodeRecord.safeParse(node(undefined)).success).toBe(true);
    for (const bad of ['10.244.1.0/99', '10.244.1.0', '300.0.0.0/8', '10.244.1.0/-1']) {
      expect(nodeRecord.safeParse(node(bad)).success, bad).toBe(false);
    }
    expect(nodeRecord.safeParse(node('10.244.1.0/24', ['10.250.0.256'])).success).toBe(false);
    // Dual-stack: podCIDRs of either family; podCIDR stays the IPv4 one (what older agents read).
    const dual = { ...node('10.244.1.0/24', ['10.250.0.10', 'fd00:10:250::10']), podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] };
    expect(nodePodCIDRs(nodeRecord.parse(dual))).toEqual(['10.244.1.0/24', 'fd00:10:244:1::/64']);
    expect(nodePodCIDRs(nodeRecord.parse(node('10.244.1.0/24')))).toEqual(['10.244.1.0/24']);
    expect(nodeRecord.safeParse({ ...dual, podCIDRs: ['fd00:10:244:1::/129'] }).success).toBe(false);
    expect(nodeRecord.safeParse(node('fd00:10:244:1::/64')).success).toBe(false);
  });

  it('agent options - --node-labels: KEY=VALUE pairs with label syntax, or a refusal naming the bad one', () => {
    const base = { node: 'n1', nats: 'nats://127.0.0.1:4222' };
    expect(agentOptions.parse({ ...base, nodeLabels: 'zone=a,tier=,example.com/rack=r1' }).nodeLabels).toEqual({ zone: 'a', tier: '', 'example.com/rack': 'r1' });
    expect(agentOptions.parse(base).nodeLabels).toEqual({});
    for (const [bad, why] of [['zone', /"zone": expected KEY=VALUE/], ['-z=a', /"-z=a": .*invalid|"-z=a": /], ['z=a b', /"z=a b": /]] as const) {
      const r = agentOptions.safeParse({ ...base, nodeLabels: bad });
      expect(r.success, bad).toBe(false);
      expect(r.error?.issues[0]?.message, bad).toMatch(why);
    }
  });

  it('agent options - --map-entries: NAME=N for the maps whose size is a capacity, or a refusal naming the bad item', () => {
    const base = { node: 'n1', nats: 'nats://127.0.0.1:4222' };
    expect(agentOptions.parse({ ...base, mapEntries: 'tp_ipcache_v1=131072,tp_endpoints_v1=4096' }).mapEntries).toEqual({ tp_ipcache_v1: 131072, tp_endpoints_v1: 4096 });
    expect(agentOptions.parse(base).mapEntries).toEqual({});
    for (const bad of ['tp_lut_v1=10', 'tp_ipcache_v1=0', 'tp_ipcache_v1', 'nope=5']) {
      const r = agentOptions.safeParse({ ...base, mapEntries: bad });
      expect(r.success, bad).toBe(false);
      expect(r.error?.issues[0]?.message, bad).toContain(`${JSON.stringify(bad)}: expected NAME=N`);
    }
  });

  it('agent options - --host-routing is bpf by default, or stack; anything else is refused', () => {
    const base = { node: 'n1', nats: 'nats://127.0.0.1:4222' };
    expect(agentOptions.parse(base).hostRouting).toBe('bpf');
    expect(agentOptions.parse({ ...base, hostRouting: 'stack' }).hostRouting).toBe('stack');
    const r = agentOptions.safeParse({ ...base, hostRouting: 'legacy' });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['hostRouting']);
  });

  it('agent options - a pod CIDR that does not parse is refused at start', () => {
    const base = { node: 'n1', nats: 'nats://127.0.0.1:4222' };
    expect(agentOptions.safeParse({ ...base, podCIDRs: ['10.244.1.0/24'] }).success).toBe(true);
    expect(agentOptions.safeParse({ ...base, podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] }).success).toBe(true);
    const r = agentOptions.safeParse({ ...base, podCIDRs: ['10.244.1.0/99'] });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toMatch(/a CIDR like/);
    expect(agentOptions.safeParse({ ...base, podCIDRs: ['10.244.1.0/24', '10.244.2.0/24'] }).error?.issues[0]?.message).toMatch(/one range per family/);
  });
});

describe('store schema - policies', () => {
  const text = [
    'apiVersion: networking.k8s.io/v1',
    'kind: NetworkPolicy',
    'metadata: {name: p, namespace: x}',
    'spec:',
    '  podSelector: {matchExpressions: [{key: app, operator: In, values: [a]}]}',
    '  ingress: [{from: [{podSelector: {matchLabels: {app: b}}}], ports: [{port: http}]}]',
    '  egress: [{to: [{namespaceSelector: {}}], ports: [{protocol: UDP, port: 53, endPort: 60}]}]',
    '',
  ].join('\n');
  const [full] = parsePolicyText(text, 'p.yaml');
  const [plain] = parsePolicyText(['apiVersion: networking.k8s.io/v1', 'kind: NetworkPolicy', 'metadata: {name: q, namespace: x}', 'spec:', '  podSelector: {matchLabels: {app: a}}', '  ingress: [{ports: [{port: 80}]}]', ''].join('\n'), 'q.yaml');

  it('store schema - what apply stores reads back as the document parsed, with or without the newer fields', () => {
    for (const doc of [full!, plain!]) expect(policyDocumentSchema.parse(JSON.parse(JSON.stringify(storedPolicy(doc))))).toStrictEqual(doc);
  });

  it('store schema - a policy without egress or matchExpressions is stored in the shape earlier agents read', () => {
    const stored = JSON.stringify(storedPolicy(plain!));
    expect(stored).not.toMatch(/matchExpressions|egress/);
    expect(JSON.stringify(storedPolicy(full!))).toMatch(/matchExpressions/);
  });

  it('store schema - a record the parser could not have produced is refused, not compiled into something else', () => {
    const bad = (change: (d: Record<string, unknown>) => void) => {
      const d = JSON.parse(JSON.stringify(storedPolicy(full!))) as Record<string, unknown>;
      change(d);
      return policyDocumentSchema.safeParse(d).success;
    };
    expect(bad(() => {})).toBe(true);
    expect(bad((d) => ((d.egress as { ports: unknown[] }[])[0]!.ports = [{ protocol: 'TCP', port: 'http' }]))).toBe(true); // named port in egress: resolved per destination
    const block = (ipBlock: unknown, extra: object = {}) => (d: Record<string, unknown>) => ((d.ingress as { from: unknown[] }[])[0]!.from = [{ ipBlock, ...extra }]);
    expect(bad(block({ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }))).toBe(true);
    expect(bad(block({ cidr: '10.0.0.1/8', except: [] }))).toBe(false); // not canonical: the parser clears host bits
    expect(bad(block({ cidr: '10.0.0.0/8', except: ['192.168.0.0/16'] }))).toBe(false); // except outside cidr
    expect(bad(block({ cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] }))).toBe(false); // except equal to cidr
    expect(bad(block({ cidr: '10.0.0.0/8' }))).toBe(false); // the parser always writes except
    expect(bad(block({ cidr: '10.0.0.0/8', except: ['bogus'] }))).toBe(false); // refused, not thrown out of the watch
    expect(bad(block({ cidr: 'bogus', except: ['10.1.0.0/16'] }))).toBe(false);
    expect(bad(block({ cidr: '10.0.0.0/8', except: [] }, { podSelector: { matchLabels: {} } }))).toBe(false); // an ipBlock stands alone
    expect(bad((d) => ((d.ingress as { from: unknown[] }[])[0]!.from = []))).toBe(false); // empty peers ("all" in Kubernetes, "none" read literally)
    expect(bad((d) => ((d.ingress as { ports: unknown[] }[])[0]!.ports = []))).toBe(false);
    expect(bad((d) => ((d.podSelector as { matchExpressions: { values: string[] }[] }).matchExpressions[0]!.values = []))).toBe(false); // In without values
  });
});
