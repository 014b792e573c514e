// Cluster policies end to end, on the Kubernetes e2e layout (labs/netpol-e2e.yaml:
// namespaces x, y, z; pods a, b, c; ports 80/81 TCP and UDP; three dual-stack nodes):
// scenarios of the network-policy-api conformance suite (an Admin deny over a
// NetworkPolicy allow, Pass handing over to NetworkPolicy, a Baseline deny under no
// NetworkPolicy and none under one, priority order, egress to networks), each applied
// with the CLI and required to give, on all 648 probes, the matrix the independent model
// gives (test/helpers/model.ts reads the tiers itself). Needs root and `make build`.
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_METRICS_PORT } from '../../src/lab/agents.js';
import { probeTargets, type ProbeTarget } from '../../src/lab/probe.js';
import { readLabState } from '../../src/lab/state.js';
import { expectCut, flowsAcross } from '../helpers/flows.js';
import { cli, MatrixLab, type MatrixCase } from '../helpers/matrix-lab.js';

const lab = new MatrixLab('labs/netpol-e2e.yaml');

const anp = (name: string, priority: number, spec: string) => `apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: ${name}}
spec:
  priority: ${priority}
${indent(spec)}`;
const cnp = (name: string, tier: 'Admin' | 'Baseline', priority: number, spec: string) => `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: ${name}}
spec:
  tier: ${tier}
  priority: ${priority}
${indent(spec)}`;
const banp = (spec: string) => `apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
${indent(spec)}`;
const np = (name: string, namespace: string, spec: string) => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${indent(spec)}`;
const indent = (s: string) => s.split('\n').map((l) => `  ${l}`).join('\n') + '\n';
const docs = (...d: string[]) => d.join('---\n');
const ns = (name: string) => `{namespaces: {matchLabels: {ns: ${name}}}}`;

const CASES: MatrixCase[] = [
  {
    name: 'an Admin Deny wins over a NetworkPolicy that allows',
    policies: docs(
      np('x-from-all', 'x', 'podSelector: {}\ningress: [{}]'),
      anp('deny-y-to-x', 10, `subject: ${ns('x')}\ningress:\n  - {name: no-y, action: Deny, from: [${ns('y')}]}`),
    ),
  },
  {
    name: 'Pass hands what it matches to the NetworkPolicies; what it does not match meets the next Admin rule',
    policies: docs(
      cnp('pass-y', 'Admin', 5, `subject: ${ns('x')}\ningress:\n  - {name: let-np-decide-y, action: Pass, from: [${ns('y')}]}\n  - {name: deny-the-rest, action: Deny, from: [{namespaces: {}}]}`),
      np('x-from-y-b', 'x', 'podSelector: {}\ningress:\n  - from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]'),
    ),
  },
  {
    name: 'a Baseline Deny holds where no NetworkPolicy isolates the pod, and not where one does',
    policies: docs(
      banp(`subject: {namespaces: {}}\ningress:\n  - {name: no-z, action: Deny, from: [${ns('z')}]}`),
      np('x-from-z-a', 'x', 'podSelector: {matchLabels: {pod: a}}\ningress:\n  - from: [{namespaceSelector: {matchLabels: {ns: z}}, podSelector: {matchLabels: {pod: a}}}]'),
    ),
  },
  {
    name: 'a lower priority goes first: an Accept at 5 over a Deny at 10, across kinds',
    policies: docs(
      cnp('accept-y', 'Admin', 5, `subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}}\ningress:\n  - {action: Accept, from: [${ns('y')}], protocols: [{tcp: {destinationPort: {number: 80}}}]}`),
      anp('deny-y-z', 10, `subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}}\ningress:\n  - {action: Deny, from: [${ns('y')}, ${ns('z')}]}`),
    ),
  },
  {
    name: "egress to networks: x/a may not reach n3's pod ranges, in either family, whatever the labels",
    policies: cnp(
      'x-a-not-n3',
      'Admin',
      1,
      `subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}}\negress:\n  - {name: not-n3, action: Deny, to: [{networks: ["${lab.podCidr('n3')}", "${lab.podCidr6('n3')}"]}]}`,
    ),
  },
  {
    name: 'a Baseline Accept does not open what a NetworkPolicy isolates, and its Pass falls through to the default',
    policies: docs(
      cnp(
        'baseline',
        'Baseline',
        1,
        `subject: {namespaces: {}}\ningress:\n  - {action: Accept, from: [${ns('z')}]}\n  - {action: Deny, from: [${ns('z')}]}\negress:\n  - {action: Pass, to: [${ns('y')}]}\n  - {action: Deny, to: [{namespaces: {}}], protocols: [{udp: {destinationPort: {range: {start: 1, end: 65535}}}}]}`,
      ),
      np('z-egress-none', 'z', 'podSelector: {matchLabels: {pod: c}}\npolicyTypes: [Egress]'),
      np('x-a-ingress-none', 'x', 'podSelector: {matchLabels: {pod: a}}\npolicyTypes: [Ingress]'),
    ),
  },
];

describe('cluster policy e2e', () => {
  beforeAll(() => lab.up());
  afterAll(() => lab.down());

  for (const c of CASES) {
    it(`cluster policy e2e - ${c.name}`, async () => {
      const rows = await lab.runCase(c);
      expect(rows.some((r) => !r.connected), 'some pair blocked').toBe(true);
      expect(rows.some((r) => r.connected && r.from !== r.to), 'some pair connected').toBe(true);
    });
  }

  it('cluster policy e2e - egress to nodes by label: x/a may not reach n2 (its agent metrics port), n3 stays reachable', async () => {
    const node = (name: string) => lab.plan.nodes.find((n) => n.name === name)!;
    const targets = (): ProbeTarget[] => ['n2', 'n3'].flatMap((n) => node(n).underlayIPs.slice(0, 1).map((ip) => ({ to: n, ip, port: AGENT_METRICS_PORT, protocol: 'TCP' as const })));
    // An echo probe to an HTTP port: what matters is whether the handshake completes at all.
    const reach = async () => (await probeTargets(await readLabState(), 'x/a', targets(), 700)).map((r) => `${r.to}: ${r.reason === 'timeout' ? 'timeout' : 'reached'}`);
    expect(await reach()).toEqual(['n2: reached', 'n3: reached']);
    const file = join(tmpdir(), `tp-cluster-nodes-${process.pid}.yaml`);
    writeFileSync(file, cnp('x-a-not-n2', 'Admin', 1, `subject: {pods: {namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}}\negress:\n  - {action: Deny, to: [{nodes: {matchLabels: {kubernetes.io/hostname: n2}}}]}`));
    try {
      await cli('apply', '-f', file, '--wait');
      expect(await reach()).toEqual(['n2: timeout', 'n3: reached']);
    } finally {
      await cli('delete', '-f', file, '--wait');
      rmSync(file, { force: true });
    }
    expect(await reach()).toEqual(['n2: reached', 'n3: reached']);
  });

  it('cluster policy e2e - an established connection is cut when its client is relabelled into an Admin Deny (a pod only cluster policies select)', async () => {
    const file = join(tmpdir(), `tp-cluster-cut-${process.pid}.yaml`);
    writeFileSync(file, anp('deny-b-to-x', 10, `subject: ${ns('x')}\ningress:\n  - {action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}}]}`));
    const control = join(tmpdir(), `tp-cluster-cut-${process.pid}`);
    try {
      await cli('apply', '-f', file, '--wait');
      // z/c (pod=c) reaches x/a; relabelled pod=b it takes z/b's identity, which the Deny lists already: no policy entry changes.
      const [tcp, udp] = await flowsAcross(control, { from: 'z/c', ip: lab.ip('x/a'), port: 80 }, { from: 'z/c', ip: lab.ip('x/a'), port: 81 }, () => cli('lab', 'label', 'pod', 'z/c', 'pod=b'));
      expectCut(tcp, udp);
    } finally {
      await cli('lab', 'label', 'pod', 'z/c', 'pod=c');
      await cli('delete', '-f', file, '--wait');
      rmSync(file, { force: true });
    }
  });

  it('cluster policy e2e - get policies shows every kind with its tier and priority', async () => {
    const file = join(tmpdir(), `tp-cluster-kinds-${process.pid}.yaml`);
    writeFileSync(file, docs(CASES[0]!.policies, CASES[1]!.policies.split('---\n')[0]!, CASES[2]!.policies.split('---\n')[0]!));
    try {
      await cli('apply', '-f', file, '--wait');
      const table = (await cli('get', 'policies')).stdout;
      expect(table).toMatch(/^KIND\s+NAMESPACE\s+NAME\s+TIER\s+PRIORITY/);
      expect(table).toMatch(/AdminNetworkPolicy\s+deny-y-to-x\s+Admin\s+10\s+ns:ns=x/);
      expect(table).toMatch(/ClusterNetworkPolicy\s+pass-y\s+Admin\s+5\s/);
      expect(table).toMatch(/BaselineAdminNetworkPolicy\s+default\s+Baseline\s+0\s/);
      const json = JSON.parse((await cli('get', 'policies', '-o', 'json')).stdout) as { kind: string }[];
      expect(json.map((p) => p.kind).sort()).toEqual(['AdminNetworkPolicy', 'BaselineAdminNetworkPolicy', 'ClusterNetworkPolicy', 'NetworkPolicy']);
    } finally {
      await cli('delete', '-f', file, '--wait');
      rmSync(file, { force: true });
    }
  });

  it('cluster policy e2e - after every case is deleted every pod reaches every pod again', async () => {
    const rows = await lab.expectOpen();
    expect(rows.every((r) => r.connected)).toBe(true);
  });
});
