// Verdict events as observe shows them: naming (agent/flows.ts), the filters
// (src/store/flows.ts) and the CLI's parsing and line form (src/cli/observe.ts).
import { describe, expect, it } from 'vitest';
import { emptyNames, flowOf, policyNames, type FlowNames } from '../../agent/flows.js';
import { filterOf, flowLine, parseSince } from '../../src/cli/observe.js';
import type { DatapathEvent } from '../../src/datapath/events.js';
import { compile } from '../../src/policy/compile.js';
import { netpol } from '../helpers/cluster.js';
import { desiredInputOf } from '../helpers/model.js';
import { flowMatches, flowSchema, type Flow } from '../../src/store/flows.js';

const NET_A = { kind: 'NetworkPolicy', namespace: 'y', name: 'db-isolated', rule: null };
const RULE = { kind: 'ClusterNetworkPolicy', namespace: null, name: 'guard', rule: 'no-udp' };

function names(): FlowNames {
  return {
    ...emptyNames(),
    ...policyNames(
      [{ id: 0x80000001, description: 'ClusterNetworkPolicy guard ingress[0] no-udp', policy: RULE }],
      [{ endpointId: 7, direction: 'ingress', policies: [NET_A] }],
    ),
    endpoints: new Map([
      [7, { namespace: 'y', name: 'db' }],
      [8, { namespace: 'x', name: 'client' }],
    ]),
    pods: new Map([
      ['10.244.1.5', { namespace: 'x', name: 'client' }],
      ['10.244.2.9', { namespace: 'y', name: 'db' }],
      ['10.244.3.4', { namespace: 'y', name: 'web-1' }],
    ]),
    services: new Map([[42, 'y/web']]),
  };
}

const event = (e: Partial<DatapathEvent>): DatapathEvent => ({
  monoNs: 0n,
  family: 4,
  protocol: 6,
  src: { ip: '10.244.1.5', port: 40000 },
  dst: { ip: '10.244.2.9', port: 5432 },
  backend: null,
  serviceId: 0,
  direction: 'ingress',
  reason: 129,
  reasonName: 'drop_policy_default',
  verdict: 'dropped',
  endpointId: 7,
  identity: 300,
  peerIdentity: 301,
  ruleId: 0,
  sampled: false,
  tcpFlags: 2,
  suppressed: 0,
  ...e,
});

describe('flows - naming', () => {
  it('flows - an ingress default deny: the peer is the source, the pod the destination, the isolating policies named', () => {
    const f = flowOf(event({}), 'n2', names(), Date.UTC(2026, 11, 2, 10, 0, 0));
    expect(flowSchema.parse(f)).toEqual(f);
    expect(f).toEqual({
      time: '2026-12-02T10:00:00.000Z',
      node: 'n2',
      verdict: 'dropped',
      reason: 'drop_policy_default',
      direction: 'ingress',
      protocol: 'TCP',
      family: 4,
      source: { namespace: 'x', pod: 'client', ip: '10.244.1.5', port: 40000, identity: 301 },
      destination: { namespace: 'y', pod: 'db', ip: '10.244.2.9', port: 5432, identity: 300 },
      service: null,
      policies: [NET_A],
      sampled: false,
      suppressed: 0,
    });
  });

  it('flows - an egress service connection: the destination is the backend, the service named, the rule by its id', () => {
    const f = flowOf(
      event({ direction: 'egress', endpointId: 8, dst: { ip: '10.96.0.10', port: 80 }, backend: { ip: '10.244.3.4', port: 8080 }, serviceId: 42, ruleId: 0x80000001, reason: 128, reasonName: 'drop_policy' }),
      'n1',
      names(),
      0,
    );
    expect(f.source).toEqual({ namespace: 'x', pod: 'client', ip: '10.244.1.5', port: 40000, identity: 300 });
    expect(f.destination).toEqual({ namespace: 'y', pod: 'web-1', ip: '10.244.3.4', port: 8080, identity: 301 });
    expect(f.service).toBe('y/web');
    expect(f.policies).toEqual([RULE]);
  });

  it('flows - outside addresses have no pod; ICMP has no ports; an unknown rule id is still named', () => {
    const f = flowOf(event({ src: { ip: '192.0.2.1', port: 7 }, protocol: 1, ruleId: 0x80000099, reasonName: 'drop_policy' }), 'n2', names(), 0);
    expect(f.source).toEqual({ namespace: null, pod: null, ip: '192.0.2.1', port: null, identity: 301 });
    expect(f.protocol).toBe('ICMP');
    expect(f.policies).toEqual([{ kind: 'unknown', namespace: null, name: `rule-${0x80000099}`, rule: null }]);
  });

  it('flows - an allowed default names no policy; a drop with no endpoint names both sides by address', () => {
    expect(flowOf(event({ reason: 4, reasonName: 'pass_default', verdict: 'forwarded' }), 'n2', names(), 0).policies).toEqual([]);
    const f = flowOf(event({ endpointId: 0, reasonName: 'drop_truncated', peerIdentity: 0 }), 'n2', names(), 0);
    expect([f.source.pod, f.destination.pod, f.source.identity, f.destination.identity]).toEqual(['client', 'db', null, null]);
  });
});

describe('flows - what the compiler tells the names', () => {
  it('flows - each rule id comes with its policy and rule; each isolated direction with its isolating NetworkPolicies', () => {
    const sel = (l: Record<string, string>) => ({ matchLabels: l, matchExpressions: [] });
    const bridge = desiredInputOf({
      localNode: 'n1',
      nodes: [{ name: 'n1', addresses: ['10.250.0.10'], podCIDRs: ['10.244.1.0/24'] }],
      namespaces: [{ name: 'y', labels: { 'kubernetes.io/metadata.name': 'y' } }],
      pods: [
        { namespace: 'y', name: 'db', node: 'n1', labels: { app: 'db' }, ips: ['10.244.1.5'] },
        { namespace: 'y', name: 'web', node: 'n1', labels: { app: 'web' }, ips: ['10.244.1.6'] },
      ],
      policies: [
        netpol('y', 'db-isolated', { podSelector: sel({ app: 'db' }) }),
        netpol('y', 'db-from-web', { podSelector: sel({ app: 'db' }), ingress: [{ from: [{ podSelector: sel({ app: 'web' }) }] }] }),
        netpol('y', 'web-out', { podSelector: sel({ app: 'web' }), policyTypes: ['Egress'] }),
      ],
    });
    const out = compile(bridge.input);
    const db = bridge.endpointIds.get('y/db')!;
    const web = bridge.endpointIds.get('y/web')!;
    const ref = (name: string) => ({ kind: 'NetworkPolicy', namespace: 'y', name, rule: null });
    expect(out.isolation).toEqual([
      { endpointId: db, direction: 'ingress', policies: [ref('db-isolated'), ref('db-from-web')] },
      { endpointId: web, direction: 'egress', policies: [ref('web-out')] },
    ]);
    expect(out.rules.map((r) => r.policy)).toEqual(
      expect.arrayContaining([{ kind: 'NetworkPolicy', namespace: 'y', name: 'db-from-web', rule: 'ingress[0]' }, { kind: 'tcplane', namespace: null, name: 'allow-local-node', rule: 'ingress' }]),
    );
  });
});

describe('flows - filters', () => {
  const f = flowOf(event({}), 'n2', names(), 0);
  it('flows - each filter selects on its field, both sides where it says either', () => {
    expect(flowMatches(f, {})).toBe(true);
    expect(flowMatches(f, { namespace: 'x' })).toBe(true);
    expect(flowMatches(f, { namespace: 'z' })).toBe(false);
    expect(flowMatches(f, { pod: 'db' })).toBe(true);
    expect(flowMatches(f, { pod: 'x/db' })).toBe(false);
    expect(flowMatches(f, { fromPod: 'x/client', toPod: 'y/db' })).toBe(true);
    expect(flowMatches(f, { fromPod: 'y/db' })).toBe(false);
    expect(flowMatches(f, { verdict: 'dropped', port: 5432, protocol: 'tcp', node: 'n2' })).toBe(true);
    expect(flowMatches(f, { verdict: 'forwarded' })).toBe(false);
    expect(flowMatches(f, { port: 80 })).toBe(false);
    expect(flowMatches(f, { node: 'n1' })).toBe(false);
    expect(flowMatches(f, { policy: 'db-isolated' })).toBe(true);
    expect(flowMatches(f, { policy: 'y/db-isolated' })).toBe(true);
    expect(flowMatches(f, { policy: 'x/db-isolated' })).toBe(false);
  });

  it('flows - the CLI refuses a bad verdict or port, and reads durations and times for --since', () => {
    expect(() => filterOf({ verdict: 'maybe' })).toThrow(/one of forwarded, dropped, rejected, audit/);
    expect(() => filterOf({ port: '70000' })).toThrow(/0-65535/);
    expect(filterOf({ verdict: 'DROPPED', port: '80', fromPod: 'x/a' })).toEqual({ verdict: 'dropped', port: 80, fromPod: 'x/a' });
    expect(parseSince('5m', 1_000_000)).toBe(700_000);
    expect(parseSince('2026-12-02T10:00:00Z')).toBe(Date.UTC(2026, 11, 2, 10));
    expect(() => parseSince('yesterday')).toThrow(/a duration like 30s/);
  });

  it('flows - the line form', () => {
    const line = flowLine({ ...(f as Flow), suppressed: 3 });
    expect(line).toBe(
      '1970-01-01T00:00:00.000Z  n2  DROPPED  x/client 10.244.1.5:40000 -> y/db 10.244.2.9:5432  TCP  ingress  drop_policy_default  by NetworkPolicy y/db-isolated  (3 earlier events of this pod held back by the rate limit)',
    );
  });
});
