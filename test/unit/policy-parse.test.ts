import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/policy/errors.js';
import { parsePolicyFile, parsePolicyText } from '../../src/policy/parse.js';
import type { NetworkPolicy } from '../../src/policy/types.js';
import { LocatedErrors } from '../../src/yaml/located.js';
import { ROOT } from '../helpers/paths.js';

const FILE = 'policies/test.yaml';
/** parsePolicyText of NetworkPolicy documents. */
const parseNp = (text: string, file: string) => parsePolicyText(text, file) as NetworkPolicy[];

/** Lines joined with newlines, so a test can count lines: element i is line i + 1. */
const lines = (...ls: string[]) => ls.join('\n') + '\n';

/** A minimal valid NetworkPolicy header (4 lines) followed by `spec` lines. */
const np = (name: string, ...spec: string[]) =>
  lines('apiVersion: networking.k8s.io/v1', 'kind: NetworkPolicy', `metadata: {name: ${name}}`, 'spec:', ...spec);

/** Parses text that must fail; returns every error, checking each is a PolicyError. */
function errorsOf(text: string): PolicyError[] {
  try {
    parseNp(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(LocatedErrors);
    const errors = (err as LocatedErrors).errors;
    for (const e of errors) expect(e).toBeInstanceOf(PolicyError);
    return errors as PolicyError[];
  }
  throw new Error('expected parsePolicyText to throw');
}

/** The single error of text, as {line, field, detail}. */
function onlyError(text: string) {
  const errors = errorsOf(text);
  expect(errors.map((e) => e.message)).toHaveLength(1);
  const [e] = errors;
  return { line: e.line, field: e.field, detail: e.detail };
}

describe('policy parse - valid input', () => {
  it('policy parse - a two-document file normalizes exactly', () => {
    const text = lines(
      '# web may be reached from clients in namespaces labelled team=a',
      'apiVersion: networking.k8s.io/v1',
      'kind: NetworkPolicy',
      'metadata:',
      '  name: allow-web',
      '  namespace: x',
      'spec:',
      '  podSelector:',
      '    matchLabels: {app: web}',
      '  policyTypes: [Ingress]',
      '  ingress:',
      '    - from:',
      '        - podSelector: {}',
      '        - namespaceSelector: {matchLabels: {team: a}}',
      '          podSelector: {matchLabels: {role: client}}',
      '        - namespaceSelector: {}',
      '      ports:',
      '        - port: 80',
      '        - {protocol: UDP, port: 53}',
      '        - protocol: UDP',
      '    - {}',
      '    - from: []',
      '      ports: []',
      '---',
      'apiVersion: networking.k8s.io/v1',
      'kind: NetworkPolicy',
      'metadata: {name: deny-all, namespace: x}',
      'spec:',
      '  podSelector: {matchLabels: {}}',
      '  ingress: []',
    );
    const want: NetworkPolicy[] = [
      {
        kind: 'NetworkPolicy',
        apiVersion: 'networking.k8s.io/v1',
        namespace: 'x',
        name: 'allow-web',
        podSelector: { matchLabels: { app: 'web' }, matchExpressions: [] },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: {}, matchExpressions: [] } },
              { namespaceSelector: { matchLabels: { team: 'a' }, matchExpressions: [] }, podSelector: { matchLabels: { role: 'client' }, matchExpressions: [] } },
              { namespaceSelector: { matchLabels: {}, matchExpressions: [] } },
            ],
            ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 53 }, { protocol: 'UDP' }],
          },
          {},
          {},
        ],
        egress: [],
        source: { file: FILE, line: 2 },
      },
      {
        kind: 'NetworkPolicy',
        apiVersion: 'networking.k8s.io/v1',
        namespace: 'x',
        name: 'deny-all',
        podSelector: { matchLabels: {}, matchExpressions: [] },
        policyTypes: ['Ingress'],
        ingress: [],
        egress: [],
        source: { file: FILE, line: 25 },
      },
    ];
    // toStrictEqual: normalized objects carry no keys set to undefined.
    expect(parseNp(text, FILE)).toStrictEqual(want);
  });

  it('policy parse - defaults: namespace default, protocol TCP, policyTypes Ingress, no ingress denies all', () => {
    const [p] = parseNp(np('web', '  podSelector: {}', '  ingress:', '    - ports: [{port: 443}]'), FILE);
    expect(p.namespace).toBe('default');
    expect(p.policyTypes).toEqual(['Ingress']);
    expect(p.ingress).toStrictEqual([{ ports: [{ protocol: 'TCP', port: 443 }] }]);

    const [deny] = parseNp(np('deny', '  podSelector: {}'), FILE);
    expect(deny.ingress).toEqual([]);
    expect(deny.policyTypes).toEqual(['Ingress']);
  });

  it('policy parse - audit mode: the annotation tcplane.io/audit "true" audits a policy of any kind, "false" or none enforces it, anything else is refused where it stands', () => {
    const np = (value: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  annotations:
    tcplane.io/audit: "${value}"
spec: {podSelector: {}}
`;
    expect(parseNp(np('true'), 'a.yaml')[0]!.audit).toBe(true);
    expect(parseNp(np('false'), 'a.yaml')[0]).not.toHaveProperty('audit');
    expect(() => parseNp(np('yes'), 'a.yaml')).toThrow('a.yaml:6: metadata.annotations.tcplane.io/audit: must be "true" or "false", got "yes"');
    const cnp = parsePolicyText(
      'apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: c, annotations: {tcplane.io/audit: "true"}}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}\n',
      'c.yaml',
    );
    expect(cnp[0]!.audit).toBe(true);
  });

  it('policy parse - null optional fields read as absent', () => {
    const [p] = parseNp(np('web', '  podSelector: {matchLabels: null}', '  policyTypes: []', '  ingress:'), FILE);
    expect(p.podSelector).toEqual({ matchLabels: {}, matchExpressions: [] });
    expect(p.policyTypes).toEqual(['Ingress']);
    expect(p.ingress).toEqual([]);
  });

  it('policy parse - empty documents between separators are skipped', () => {
    const text = lines('---', '---', '# only a comment', '---', ...np('a', '  podSelector: {}').split('\n'), '---');
    const docs = parseNp(text, FILE);
    expect(docs.map((d) => [d.name, d.source.line])).toEqual([['a', 5]]);
    expect(parseNp('', FILE)).toEqual([]);
  });

  it('policy parse - kubectl server fields, labels and annotations in metadata are accepted', () => {
    const text = lines(
      'apiVersion: networking.k8s.io/v1',
      'kind: NetworkPolicy',
      'metadata:',
      '  name: web',
      '  namespace: prod',
      '  labels: {team: a, example.com/owner: sec}',
      '  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}',
      '  uid: 0b5c0b4e-0000-4000-8000-000000000000',
      '  resourceVersion: "1234"',
      '  generation: 2',
      '  creationTimestamp: "2024-01-01T00:00:00Z"',
      '  managedFields: [{manager: kubectl}]',
      'spec: {podSelector: {}}',
    );
    const [p] = parseNp(text, FILE);
    expect(p.name).toBe('web');
    expect(p.namespace).toBe('prod');
    expect(Object.keys(p).sort()).toEqual(
      ['apiVersion', 'egress', 'ingress', 'kind', 'name', 'namespace', 'podSelector', 'policyTypes', 'source'].sort(),
    );
  });

  it('policy parse - the same name in two namespaces is not a duplicate', () => {
    const text = np('a', '  podSelector: {}') + '---\n' + np('a', '  podSelector: {}').replace('{name: a}', '{name: a, namespace: b}');
    expect(parseNp(text, FILE).map((p) => `${p.namespace}/${p.name}`)).toEqual(['default/a', 'b/a']);
  });

  it('policy parse - every example in policies/ parses', async () => {
    const dir = join(ROOT, 'policies');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect((await parsePolicyFile(join(dir, f))).length, f).toBeGreaterThan(0);
  });

  it('policy parse - parsePolicyFile reads a file and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tcplane-policy-'));
    try {
      const good = join(dir, 'good.yaml');
      await writeFile(good, np('a', '  podSelector: {}'));
      expect((await parsePolicyFile(good))[0].source).toEqual({ file: good, line: 1 });

      const bad = join(dir, 'bad.yaml');
      await writeFile(bad, np('a', '  podSelector: {}', '  ingress: [{ports: [{port: 0}]}]'));
      await expect(parsePolicyFile(bad)).rejects.toThrow(`${bad}:6: spec.ingress[0].ports[0].port: `);

      await expect(parsePolicyFile(join(dir, 'missing.yaml'))).rejects.toThrow(/^read .*missing\.yaml: ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('policy parse - errors', () => {
  it('policy parse - port out of range names file, line and field', () => {
    const text = np('web', '  podSelector: {}', '  ingress:', '    - ports:', '        - port: 0', '        - port: 70000');
    const errors = errorsOf(text);
    expect(errors.map((e) => e.message)).toEqual([
      `${FILE}:8: spec.ingress[0].ports[0].port: must be an integer from 1 to 65535, got 0`,
      `${FILE}:9: spec.ingress[0].ports[1].port: must be an integer from 1 to 65535, got 70000`,
    ]);
    expect(errors[0]).toMatchObject({ file: FILE, line: 8, field: 'spec.ingress[0].ports[0].port' });
  });

  it('policy parse - a fractional port is rejected', () => {
    expect(onlyError(np('web', '  podSelector: {}', '  ingress: [{ports: [{port: 80.5}]}]')).detail).toContain('1 to 65535');
  });

  it('policy parse - ipBlock: cidr and except are read in canonical form (host bits cleared, IPv6 shortest); except defaults to none', () => {
    const [p] = parseNp(
      np('p', '  podSelector: {}', '  ingress:', '    - from:', '        - ipBlock: {cidr: 10.1.2.3/16, except: [10.1.9.0/24]}', '        - ipBlock: {cidr: "2001:DB8:0:0::1/64"}'),
      FILE,
    );
    expect(p!.ingress[0]!.from).toEqual([{ ipBlock: { cidr: '10.1.0.0/16', except: ['10.1.9.0/24'] } }, { ipBlock: { cidr: '2001:db8::/64', except: [] } }]);
  });

  it('policy parse - a named port in an egress rule is read (it resolves on each destination pod)', () => {
    const [p] = parseNp(np('p', '  podSelector: {}', '  egress:', '    - ports:', '        - port: http'), FILE);
    expect(p!.egress[0]!.ports).toEqual([{ protocol: 'TCP', port: 'http' }]);
  });

  it.each([
    [
      'an ipBlock with a selector in the same peer',
      ['    - from:', '        - ipBlock: {cidr: 10.0.0.0/8}', '          podSelector: {}'],
      8,
      'spec.ingress[0].from[0].ipBlock',
      'an ipBlock peer takes no podSelector or namespaceSelector (use separate peers)',
    ],
    ['an ipBlock without cidr', ['    - from:', '        - ipBlock: {except: [10.0.0.0/8]}'], 8, 'spec.ingress[0].from[0].ipBlock.cidr', 'required (a CIDR'],
    ['a cidr that is no CIDR', ['    - from:', '        - ipBlock: {cidr: 10.0.0.0}'], 8, 'spec.ingress[0].from[0].ipBlock.cidr', 'not a CIDR'],
    ['a prefix longer than the address', ['    - from:', '        - ipBlock: {cidr: 10.0.0.0/33}'], 8, 'spec.ingress[0].from[0].ipBlock.cidr', 'prefix length 33 is longer than an IPv4 address'],
    [
      'an except outside its cidr',
      ['    - from:', '        - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/16, 192.168.0.0/16]}'],
      8,
      'spec.ingress[0].from[0].ipBlock.except[1]',
      '192.168.0.0/16 is not strictly inside cidr 10.0.0.0/8',
    ],
    ['an except equal to its cidr', ['    - from:', '        - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}'], 8, 'spec.ingress[0].from[0].ipBlock.except[0]', 'not strictly inside'],
    ['an except of the other family', ['    - from:', '        - ipBlock: {cidr: 10.0.0.0/8, except: ["fd00::/64"]}'], 8, 'spec.ingress[0].from[0].ipBlock.except[0]', 'fd00::/64 is not strictly inside cidr 10.0.0.0/8'],
  ])('policy parse - %s is a located error', (_, rule, line, field, detail) => {
    const e = onlyError(np('p', '  podSelector: {}', '  ingress:', ...rule));
    expect(e).toEqual({ line, field, detail: expect.stringContaining(detail) });
  });

  it('policy parse - policyTypes defaults as Kubernetes does: Egress joins only with an egress rule', () => {
    const types = (...spec: string[]) => parseNp(np('p', '  podSelector: {}', ...spec), FILE)[0]!.policyTypes;
    expect(types()).toEqual(['Ingress']);
    expect(types('  egress: []')).toEqual(['Ingress']);
    expect(types('  egress: [{}]')).toEqual(['Ingress', 'Egress']);
    expect(types('  policyTypes: [Egress]')).toEqual(['Egress']);
    expect(types('  policyTypes: [Egress, Ingress, Egress]', '  egress: [{}]')).toEqual(['Ingress', 'Egress']);
    expect(onlyError(np('p', '  podSelector: {}', '  policyTypes: [Both]'))).toEqual({
      line: 6,
      field: 'spec.policyTypes[0]',
      detail: 'unknown policy type "Both" (supported: Ingress, Egress)',
    });
  });

  it('policy parse - egress rules, matchExpressions, named ports, endPort and SCTP normalize exactly', () => {
    const [p] = parseNp(
      np(
        'p',
        '  podSelector:',
        '    matchExpressions:',
        '      - {key: tier, operator: In, values: [front, edge]}',
        '      - {key: canary, operator: DoesNotExist}',
        '  ingress:',
        '    - ports: [{port: http}, {protocol: UDP, port: 5000, endPort: 5100}, {protocol: SCTP, port: 9}]',
        '  egress:',
        '    - to: [{namespaceSelector: {matchExpressions: [{key: team, operator: NotIn, values: [b]}]}}]',
        '      ports: [{port: 443}]',
      ),
      FILE,
    );
    expect(p).toMatchObject({
      podSelector: {
        matchLabels: {},
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['front', 'edge'] },
          { key: 'canary', operator: 'DoesNotExist', values: [] },
        ],
      },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: 'http' }, { protocol: 'UDP', port: 5000, endPort: 5100 }, { protocol: 'SCTP', port: 9 }] }],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: {}, matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['b'] }] } }],
          ports: [{ protocol: 'TCP', port: 443 }],
        },
      ],
    });
  });

  it.each([
    ['In without values', ['  podSelector:', '    matchExpressions: [{key: a, operator: In}]'], 6, 'spec.podSelector.matchExpressions[0].values', 'operator In needs at least one value'],
    ['Exists with values', ['  podSelector:', '    matchExpressions: [{key: a, operator: Exists, values: [x]}]'], 6, 'spec.podSelector.matchExpressions[0].values', 'operator Exists takes no values'],
    ['an unknown operator', ['  podSelector:', '    matchExpressions: [{key: a, operator: Gt, values: ["1"]}]'], 6, 'spec.podSelector.matchExpressions[0].operator', 'unknown operator "Gt"'],
    ['a bad key', ['  podSelector:', '    matchExpressions: [{key: "-a", operator: Exists}]'], 6, 'spec.podSelector.matchExpressions[0].key', 'invalid label key'],
    ['endPort without port', ['  podSelector: {}', '  ingress: [{ports: [{endPort: 90}]}]'], 6, 'spec.ingress[0].ports[0].endPort', 'endPort needs port'],
    ['endPort after a named port', ['  podSelector: {}', '  ingress: [{ports: [{port: http, endPort: 90}]}]'], 6, 'spec.ingress[0].ports[0].endPort', 'endPort needs a numeric port'],
    ['endPort below port', ['  podSelector: {}', '  ingress: [{ports: [{port: 90, endPort: 80}]}]'], 6, 'spec.ingress[0].ports[0].endPort', 'endPort 80 is below port 90'],
    ['a bad port name', ['  podSelector: {}', '  ingress: [{ports: [{port: "web--ui"}]}]'], 6, 'spec.ingress[0].ports[0].port', 'invalid port name "web--ui"'],
  ])('policy parse - %s is a located error', (_, spec, line, field, detail) => {
    expect(onlyError(np('p', ...spec))).toEqual({ line, field, detail: expect.stringContaining(detail) });
  });

  it('policy parse - kind Service is no policy here', () => {
    const text = lines('apiVersion: v1', 'kind: Service', 'metadata: {name: x}');
    expect(onlyError(text)).toEqual({ line: 2, field: 'kind', detail: 'kind Service is not supported yet' });
  });

  it('policy parse - unknown kind lists the supported ones', () => {
    const text = lines('apiVersion: v1', 'kind: ConfigMap', 'metadata: {name: x}');
    expect(onlyError(text)).toEqual({ line: 2, field: 'kind', detail: 'unknown kind ConfigMap (supported: NetworkPolicy, ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy)' });
  });

  it('policy parse - a wrong apiVersion names the expected one', () => {
    const text = np('web', '  podSelector: {}').replace('networking.k8s.io/v1', 'networking.k8s.io/v1beta1');
    const e = onlyError(text);
    expect(e).toMatchObject({ line: 1, field: 'apiVersion' });
    expect(e.detail).toContain('expected networking.k8s.io/v1');
    expect(e.detail).toContain('networking.k8s.io/v1beta1');
  });

  it('policy parse - missing kind, apiVersion, metadata.name and podSelector are located errors', () => {
    expect(onlyError(lines('apiVersion: networking.k8s.io/v1', 'metadata: {name: x}'))).toMatchObject({ line: 1, field: 'kind' });
    expect(onlyError(lines('kind: NetworkPolicy', 'metadata: {name: x}', 'spec: {podSelector: {}}'))).toMatchObject({
      line: 1,
      field: 'apiVersion',
      detail: 'required (networking.k8s.io/v1)',
    });
    expect(onlyError(np('web', '  podSelector: {}').replace('{name: web}', '{namespace: x}'))).toEqual({
      line: 3,
      field: 'metadata.name',
      detail: 'required',
    });
    expect(onlyError(np('web', '  ingress: []'))).toMatchObject({ line: 4, field: 'spec.podSelector', detail: expect.stringContaining('required') });
  });

  it('policy parse - a document that is not a mapping is a located error', () => {
    const text = np('a', '  podSelector: {}') + lines('---', '- just', '- a list');
    expect(onlyError(text)).toEqual({ line: 7, field: '', detail: expect.stringContaining('must be a mapping') });
  });

  it('policy parse - bad label key and value are located at the label', () => {
    const text = np('web', '  podSelector:', '    matchLabels:', '      app: web', '      -bad: x', '      ok: "not ok!"');
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.line, e.field])).toEqual([
      [8, 'spec.podSelector.matchLabels.-bad'],
      [9, 'spec.podSelector.matchLabels.ok'],
    ]);
    expect(errors[0].detail).toContain('invalid label key "-bad"');
    expect(errors[1].detail).toContain('invalid label value');
  });

  it('policy parse - a non-string label value is rejected', () => {
    expect(onlyError(np('web', '  podSelector: {matchLabels: {version: 2}}'))).toMatchObject({
      field: 'spec.podSelector.matchLabels.version',
      detail: 'label values are strings: quote it ("2")',
    });
  });

  it('policy parse - invalid metadata names', () => {
    const text = lines('apiVersion: networking.k8s.io/v1', 'kind: NetworkPolicy', 'metadata:', '  name: Web_1', '  namespace: a.b', 'spec: {podSelector: {}}');
    expect(errorsOf(text).map((e) => [e.line, e.field])).toEqual([
      [4, 'metadata.name'],
      [5, 'metadata.namespace'],
    ]);
  });

  it('policy parse - a peer without selectors is rejected', () => {
    expect(onlyError(np('web', '  podSelector: {}', '  ingress:', '    - from:', '        - {}'))).toEqual({
      line: 8,
      field: 'spec.ingress[0].from[0]',
      detail: 'a peer needs podSelector, namespaceSelector (or both), or ipBlock',
    });
  });

  it('policy parse - an unknown protocol is rejected', () => {
    expect(onlyError(np('web', '  podSelector: {}', '  ingress: [{ports: [{protocol: tcp}]}]')).detail).toBe(
      'unknown protocol "tcp" (supported: TCP, UDP, SCTP)',
    );
  });

  it('policy parse - unknown fields are located at the key, top-level and deep', () => {
    const text = lines(
      'apiVersion: networking.k8s.io/v1',
      'kind: NetworkPolicy',
      'metadata:',
      '  name: web',
      '  nmespace: x',
      'spec:',
      '  podSelector: {}',
      '  ingress:',
      '    - from:',
      '        - podSelector:',
      '            matchLabel: {app: web}',
      '      prots: [{port: 80}]',
      'status: {}',
    );
    expect(errorsOf(text).map((e) => e.message)).toEqual([
      `${FILE}:5: metadata.nmespace: unknown field`,
      `${FILE}:11: spec.ingress[0].from[0].podSelector.matchLabel: unknown field`,
      `${FILE}:12: spec.ingress[0].prots: unknown field`,
      `${FILE}:13: status: unknown field`,
    ]);
  });

  it('policy parse - malformed YAML is a located error', () => {
    const text = np('web', '  podSelector: {}', '  ingress: [{ports: [{port: 80}]', '  foo: bar');
    const errors = errorsOf(text);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0].detail).toMatch(/^YAML: /);
    expect(errors[0].line).toBeGreaterThanOrEqual(6);
  });

  it('policy parse - an alias bomb is a located error, not an expansion', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abcdefg'[i]}`).join(', ')}]`)];
    const first = np('web', '  podSelector: {}');
    const errors = errorsOf(first + lines('---', ...bomb));
    expect(errors).toHaveLength(1);
    expect(errors[0].line).toBe(first.split('\n').length + 1); // the bomb's first line, after `---`
    expect(errors[0].detail).toMatch(/^YAML: .*alias/i);
  });

  it('policy parse - duplicate keys in YAML are an error', () => {
    expect(onlyError(np('web', '  podSelector: {}', '  podSelector: {}')).detail).toContain('unique');
  });

  it('policy parse - a duplicate kind/namespace/name is an error at the second document', () => {
    const text = np('web', '  podSelector: {}') + lines('---', 'apiVersion: networking.k8s.io/v1', 'kind: NetworkPolicy', 'metadata:', '  name: web', '  namespace: default', 'spec: {podSelector: {}}');
    expect(onlyError(text)).toEqual({
      line: 10,
      field: 'metadata.name',
      detail: 'duplicate NetworkPolicy default/web (first defined at line 1)',
    });
  });

  it('policy parse - every error of every document is reported, sorted by line, and nothing is returned', () => {
    const text = lines(
      'apiVersion: networking.k8s.io/v1', // 1
      'kind: NetworkPolicy',
      'metadata: {name: a}',
      'spec:',
      '  podSelector: {}', // 5
      '  ingress:',
      '    - ports: [{port: 0}]', // 7
      '---',
      'kind: Foo', // 9
      '---',
      'apiVersion: networking.k8s.io/v1', // 11
      'kind: NetworkPolicy',
      'metadata: {name: b}',
      'spec:',
      '  podSelector: {}', // 15
      '  egress: [{ports: [{port: we_b}]}]', // 16
      '  ingress:',
      '    - from:',
      '        - ipBlock: {cidr: 10.0.0.0/40}', // 19
      '      extra: 1', // 20
      '---',
      'apiVersion: networking.k8s.io/v1', // 22
      'kind: NetworkPolicy',
      'metadata: {name: ok}',
      'spec: {podSelector: {}}',
    );
    const errors = errorsOf(text);
    expect(errors.map((e) => `${e.line} ${e.field}`)).toEqual([
      '7 spec.ingress[0].ports[0].port',
      '9 kind',
      '16 spec.egress[0].ports[0].port',
      '19 spec.ingress[0].from[0].ipBlock.cidr',
      '20 spec.ingress[0].extra',
    ]);
    for (const e of errors) expect(e.file).toBe(FILE);
  });
});
