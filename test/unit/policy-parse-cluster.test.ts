// Cluster policy documents (src/policy/parse-cluster.ts): ClusterNetworkPolicy v1alpha2,
// AdminNetworkPolicy and BaselineAdminNetworkPolicy v1alpha1 into one model, the API's
// validation located, and what tcplane does not enforce yet refused by name.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePolicyText } from '../../src/policy/parse.js';
import { policyDocumentSchema, storedPolicy } from '../../src/policy/schema.js';
import type { ClusterNetworkPolicy } from '../../src/policy/types.js';
import { LocatedErrors } from '../../src/yaml/located.js';
import { ROOT } from '../helpers/paths.js';

const FILE = 'policies/cluster.yaml';
const lines = (...ls: string[]) => ls.join('\n') + '\n';
const ALL = { matchLabels: {}, matchExpressions: [] };
const sel = (matchLabels: Record<string, string>) => ({ matchLabels, matchExpressions: [] });

function errorsOf(text: string): string[] {
  try {
    parsePolicyText(text, FILE);
  } catch (err) {
    if (err instanceof LocatedErrors) return err.errors.map((e) => `${e.line} ${e.field}: ${e.detail}`);
    throw err;
  }
  throw new Error('expected an error');
}

const CNP = lines(
  'apiVersion: policy.networking.k8s.io/v1alpha2',
  'kind: ClusterNetworkPolicy',
  'metadata: {name: guard}',
  'spec:',
  '  tier: Admin',
  '  priority: 10',
  '  subject: {pods: {podSelector: {matchLabels: {app: api}}}}',
  '  ingress:',
  '    - name: from-monitoring',
  '      action: Accept',
  '      from: [{namespaces: {matchLabels: {team: monitoring}}}]',
  '      protocols: [{tcp: {destinationPort: {number: 9100}}}, {destinationNamedPort: metrics}]',
  '    - {action: Pass, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}}]}',
  '    - {action: Deny, from: [{namespaces: {}}], protocols: [{udp: {destinationPort: {range: {start: 1, end: 65535}}}}, {sctp: {destinationPort: {range: {start: 1000, end: 2000}}}}]}',
  '  egress:',
  '    - {action: Deny, to: [{networks: ["10.0.0.0/8", "fd00::1:0/112"]}]}',
  '    - {action: Accept, to: [{nodes: {matchLabels: {zone: b}}}]}',
);

describe('cluster policy parse - valid input', () => {
  it('cluster policy parse - a ClusterNetworkPolicy with every kind of peer and protocol', () => {
    const [p] = parsePolicyText(CNP, FILE) as ClusterNetworkPolicy[];
    expect(p).toEqual({
      kind: 'ClusterNetworkPolicy',
      apiVersion: 'policy.networking.k8s.io/v1alpha2',
      name: 'guard',
      tier: 'Admin',
      priority: 10,
      subject: { pods: { namespaceSelector: ALL, podSelector: sel({ app: 'api' }) } }, // v1alpha2: no namespaceSelector, every namespace
      ingress: [
        { name: 'from-monitoring', action: 'Accept', peers: [{ namespaces: sel({ team: 'monitoring' }) }], ports: [{ protocol: 'TCP', port: 9100 }, { name: 'metrics' }] },
        { action: 'Pass', peers: [{ pods: { namespaceSelector: ALL, podSelector: sel({ app: 'api' }) } }] },
        { action: 'Deny', peers: [{ namespaces: ALL }], ports: [{ protocol: 'UDP' }, { protocol: 'SCTP', port: 1000, endPort: 2000 }] },
      ],
      egress: [
        { action: 'Deny', peers: [{ networks: ['10.0.0.0/8', 'fd00::1:0/112'] }] },
        { action: 'Accept', peers: [{ nodes: sel({ zone: 'b' }) }] },
      ],
      source: { file: FILE, line: 1 },
    });
    // It travels through the store as parsed, and the store's schema reads it back.
    expect(policyDocumentSchema.parse(JSON.parse(JSON.stringify(storedPolicy(p!))))).toEqual(p);
  });

  it('cluster policy parse - AdminNetworkPolicy and BaselineAdminNetworkPolicy v1alpha1 read into the same model (Allow is Accept)', () => {
    const text = lines(
      'apiVersion: policy.networking.k8s.io/v1alpha1',
      'kind: AdminNetworkPolicy',
      'metadata: {name: anp}',
      'spec:',
      '  priority: 3',
      '  subject: {pods: {namespaceSelector: {matchLabels: {env: prod}}, podSelector: {}}}',
      '  ingress: [{name: ok, action: Allow, from: [{namespaces: {}}], ports: [{portNumber: {protocol: TCP, port: 80}}, {portRange: {protocol: UDP, start: 53, end: 54}}, {namedPort: dns}]}]',
      '  egress: [{action: Pass, to: [{pods: {namespaceSelector: {}, podSelector: {}}}]}]',
      '---',
      'apiVersion: policy.networking.k8s.io/v1alpha1',
      'kind: BaselineAdminNetworkPolicy',
      'metadata: {name: default}',
      'spec:',
      '  subject: {namespaces: {}}',
      '  ingress: [{action: Deny, from: [{namespaces: {}}]}]',
    );
    const [anp, banp] = parsePolicyText(text, FILE) as ClusterNetworkPolicy[];
    expect(anp).toMatchObject({ kind: 'AdminNetworkPolicy', tier: 'Admin', priority: 3, subject: { pods: { namespaceSelector: sel({ env: 'prod' }), podSelector: ALL } } });
    expect(anp!.ingress[0]).toEqual({ name: 'ok', action: 'Accept', peers: [{ namespaces: ALL }], ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 53, endPort: 54 }, { name: 'dns' }] });
    expect(anp!.egress[0]!.action).toBe('Pass');
    expect(banp).toMatchObject({ kind: 'BaselineAdminNetworkPolicy', tier: 'Baseline', priority: 0, ingress: [{ action: 'Deny' }], egress: [] });
  });
});

describe('cluster policy parse - examples', () => {
  it('cluster policy parse - every example under policies/cluster parses', () => {
    for (const f of readdirSync(`${ROOT}policies/cluster`).filter((n) => n.endsWith('.yaml'))) {
      const docs = parsePolicyText(readFileSync(`${ROOT}policies/cluster/${f}`, 'utf8'), f);
      expect(docs.length, f).toBeGreaterThan(0);
    }
  });
});

describe('cluster policy parse - errors', () => {
  const cnp = (...spec: string[]) =>
    lines('apiVersion: policy.networking.k8s.io/v1alpha2', 'kind: ClusterNetworkPolicy', 'metadata: {name: c}', 'spec:', '  tier: Admin', '  priority: 1', '  subject: {namespaces: {}}', ...spec);
  it.each<[string, string, string]>([
    ['an unknown tier', cnp().replace('tier: Admin', 'tier: Developer'), '5 spec.tier: unknown tier "Developer" (supported: Admin, Baseline)'],
    ['a priority out of range', cnp().replace('priority: 1', 'priority: 1001'), '6 spec.priority: must be an integer from 0 to 1000, got 1001'],
    ['a subject with both fields', cnp().replace('subject: {namespaces: {}}', 'subject: {namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}'), '7 spec.subject.pods: a subject takes one of namespaces, pods, not namespaces and pods'],
    ['an unknown action', cnp('  ingress: [{action: Allow, from: [{namespaces: {}}]}]'), '8 spec.ingress[0].action: unknown action "Allow" (supported: Accept, Deny, Pass)'],
    ['a rule without peers', cnp('  ingress: [{action: Deny, from: []}]'), '8 spec.ingress[0].from: '],
    ['a nodes peer with a bad selector', cnp('  egress: [{action: Deny, to: [{nodes: {matchExpressions: [{key: zone, operator: In}]}}]}]'), '8 spec.egress[0].to[0].nodes.matchExpressions[0].values: operator In needs at least one value'],
    ['a named port beside nodes', cnp('  egress: [{action: Deny, to: [{nodes: {}}], protocols: [{destinationNamedPort: http}]}]'), '8 spec.egress[0].protocols[0]: a named port cannot go with a networks or nodes peer'],
    ['a domainNames peer', cnp('  egress: [{action: Accept, to: [{domainNames: ["example.com"]}]}]'), '8 spec.egress[0].to[0].domainNames: domainNames peers are not supported yet'],
    ['a network that is no CIDR', cnp('  egress: [{action: Deny, to: [{networks: [10.0.0.0]}]}]'), '8 spec.egress[0].to[0].networks[0]: not a CIDR'],
    ['a named port beside networks', cnp('  egress: [{action: Deny, to: [{networks: [10.0.0.0/8]}], protocols: [{destinationNamedPort: http}]}]'), '8 spec.egress[0].protocols[0]: a named port cannot go with a networks or nodes peer'],
    ['a protocol with two fields', cnp('  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80}}, udp: {destinationPort: {number: 80}}}]}]'), '8 spec.ingress[0].protocols[0].udp: a protocol takes one of tcp, udp, sctp, destinationNamedPort, not tcp and udp'],
    ['a protocol without destinationPort', cnp('  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {}}]}]'), '8 spec.ingress[0].protocols[0].tcp.destinationPort: required'],
    ['a range that ends at its start', cnp('  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 80, end: 80}}}}]}]'), '8 spec.ingress[0].protocols[0].tcp.destinationPort.range.end: end must be above start'],
    ['a network given twice', cnp('  egress: [{action: Deny, to: [{networks: [10.0.0.0/8, 10.0.0.1/8]}]}]'), '8 spec.egress[0].to[0].networks[1]: duplicate network 10.0.0.0/8 (also networks[0])'],
    ['26 rules in v1alpha2', cnp('  ingress:', ...Array.from({ length: 26 }, () => '    - {action: Deny, from: [{namespaces: {}}]}')), '8 spec.ingress: at most 25 rules'],
    ['a long rule name', cnp(`  ingress: [{name: ${'x'.repeat(101)}, action: Deny, from: [{namespaces: {}}]}]`), '8 spec.ingress[0].name: at most 100 characters'],
    ['a namespace', cnp().replace('metadata: {name: c}', 'metadata: {name: c, namespace: x}'), '3 metadata.namespace: ClusterNetworkPolicy is cluster-scoped: it takes no namespace'],
    ['an unknown field', cnp('  ingress: [{action: Deny, from: [{namespaces: {}}], ports: [{portNumber: {protocol: TCP, port: 80}}]}]'), '8 spec.ingress[0].ports: unknown field'],
  ])('cluster policy parse - %s is a located error', (_, text, want) => {
    const errors = errorsOf(text);
    expect(errors.length, errors.join('\n')).toBe(1);
    expect(errors[0]).toContain(want);
  });

  it('cluster policy parse - a BaselineAdminNetworkPolicy is named default and has no Pass', () => {
    const banp = (name: string, act: string) =>
      lines('apiVersion: policy.networking.k8s.io/v1alpha1', 'kind: BaselineAdminNetworkPolicy', `metadata: {name: ${name}}`, 'spec:', '  subject: {namespaces: {}}', `  ingress: [{action: ${act}, from: [{namespaces: {}}]}]`);
    expect(errorsOf(banp('other', 'Deny'))).toEqual(['3 metadata.name: a BaselineAdminNetworkPolicy must be named "default" (there is one per cluster), got "other"']);
    expect(errorsOf(banp('default', 'Pass'))).toEqual(['6 spec.ingress[0].action: unknown action "Pass" (supported: Allow, Deny)']);
    // It has no domainNames at all; v1alpha1 takes up to 100 rules, where v1alpha2 takes 25.
    const egress = (peer: string) =>
      lines('apiVersion: policy.networking.k8s.io/v1alpha1', 'kind: BaselineAdminNetworkPolicy', 'metadata: {name: default}', 'spec:', '  subject: {namespaces: {}}', `  egress: [{action: Deny, to: [${peer}]}]`);
    expect(errorsOf(egress('{domainNames: [example.com]}'))).toContain('6 spec.egress[0].to[0].domainNames: unknown field');
    const many = lines('apiVersion: policy.networking.k8s.io/v1alpha1', 'kind: AdminNetworkPolicy', 'metadata: {name: many}', 'spec:', '  priority: 1', '  subject: {namespaces: {}}', '  ingress:', ...Array.from({ length: 26 }, () => '    - {action: Deny, from: [{namespaces: {}}]}'));
    expect((parsePolicyText(many, FILE)[0] as ClusterNetworkPolicy).ingress).toHaveLength(26);
  });
});
