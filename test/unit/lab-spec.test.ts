import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applyLabelChanges, parseLabelChanges } from '../../src/lab/label.js';
import { LabSpecError, parseLabSpec, type LabPlan } from '../../src/lab/spec.js';
import { clientBridgeIf, parseCidr, parseIPv4, podHostIf, uplinkPeerIf } from '../../src/lab/topology.js';
import { LocatedErrors } from '../../src/yaml/located.js';

const FILE = 'labs/test.yaml';

/** Lines joined with newlines: element i is line i + 1. */
const lines = (...ls: string[]) => ls.join('\n') + '\n';

/** A valid spec header: nodes n1, n2 (lines 1-3) and namespace x (lines 4-5), then `pods` lines. */
const spec = (...pods: string[]) => lines('nodes:', '  - n1', '  - n2', 'namespaces:', '  - {name: x, labels: {ns: x}}', ...pods);

function errorsOf(text: string): { line: number; field: string; detail: string }[] {
  try {
    parseLabSpec(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(LocatedErrors);
    const errors = (err as LocatedErrors).errors;
    for (const e of errors) {
      expect(e).toBeInstanceOf(LabSpecError);
      expect(e.message.startsWith(`${FILE}:${e.line}: `)).toBe(true);
    }
    return errors.map((e) => ({ line: e.line, field: e.field, detail: e.detail }));
  }
  throw new Error('expected parseLabSpec to throw');
}

function onlyError(text: string) {
  const errors = errorsOf(text);
  expect(errors).toHaveLength(1);
  return errors[0];
}

describe('lab spec - valid input', () => {
  it('lab spec - the example three-node lab plans every name and address', () => {
    const plan = parseLabSpec(readFileSync('labs/three-nodes.yaml', 'utf8'), 'labs/three-nodes.yaml');
    expect(plan.nodes.map((n) => [n.name, n.netns, n.underlayIP, n.podCIDR])).toEqual([
      ['n1', 'tp-node-n1', '10.250.0.10', '10.244.1.0/24'],
      ['n2', 'tp-node-n2', '10.250.0.11', '10.244.2.0/24'],
      ['n3', 'tp-node-n3', '10.250.0.12', '10.244.3.0/24'],
    ]);
    expect(plan.namespaces.map((n) => n.name)).toEqual(['x', 'y']);
    expect(plan.pods).toHaveLength(9);
    const nodesWithPods = new Set(plan.pods.map((p) => p.node));
    expect(nodesWithPods.size).toBe(3);
    const protocols = new Set(plan.pods.flatMap((p) => p.ports.map((q) => q.protocol)));
    expect([...protocols].sort()).toEqual(['TCP', 'UDP']);
    const a = plan.pods.find((p) => p.key === 'x/a')!;
    expect(a).toMatchObject({ ip: '10.244.1.10', netns: 'tp-pod-x-a', hostIf: podHostIf('x', 'a'), socket: '/run/tcplane/lab/pods/x_a.sock' });
  });

  it('lab spec - namespaces get kubernetes.io/metadata.name', () => {
    const plan = parseLabSpec(spec(), FILE);
    expect(plan.namespaces).toEqual([{ name: 'x', labels: { ns: 'x', 'kubernetes.io/metadata.name': 'x' } }]);
  });

  it('lab spec - nodes get kubernetes.io/hostname beside the labels given', () => {
    const plan = parseLabSpec(lines('nodes:', '  - n1', '  - {name: n2, labels: {zone: b}}'), FILE);
    expect(plan.nodes.map((n) => n.labels)).toEqual([{ 'kubernetes.io/hostname': 'n1' }, { zone: 'b', 'kubernetes.io/hostname': 'n2' }]);
  });

  it('lab spec - interface names fit IFNAMSIZ and MACs are locally administered', () => {
    const plan = parseLabSpec(spec('pods:', '  - {name: a-very-long-pod-name-indeed, namespace: x, node: n1}'), FILE);
    const p = plan.pods[0];
    expect(p.hostIf).toMatch(/^tp-[0-9a-f]{8}$/);
    expect(plan.nodes[0].uplinkPeer).toBe(uplinkPeerIf('n1'));
    for (const n of [p.hostIf, plan.nodes[0].uplinkPeer]) expect(n.length).toBeLessThanOrEqual(15);
    for (const m of [p.hostMac, p.podMac]) expect(parseInt(m.slice(0, 2), 16) & 0b11).toBe(0b10);
    expect(p.hostMac).not.toBe(p.podMac);
  });
});

describe('lab spec - allocation', () => {
  const plan = (text: string): LabPlan => parseLabSpec(text, FILE);

  it('lab spec - node CIDRs are allocated 10.244.k.0/24 in order, skipping given ones', () => {
    const p = plan(lines('nodes:', '  - a', '  - {name: b, podCIDR: 10.244.1.0/24}', '  - c', '  - {name: d, podCIDR: 10.244.2.128/25}', '  - e'));
    expect(p.nodes.map((n) => n.podCIDR)).toEqual(['10.244.3.0/24', '10.244.1.0/24', '10.244.4.0/24', '10.244.2.128/25', '10.244.5.0/24']);
    expect(p.nodes.map((n) => n.underlayIP)).toEqual(['10.250.0.10', '10.250.0.11', '10.250.0.12', '10.250.0.13', '10.250.0.14']);
  });

  it('lab spec - pod IPs are allocated from .10 upward per node, skipping given ones', () => {
    const p = plan(
      spec(
        'pods:',
        '  - {name: a, namespace: x, node: n1}',
        '  - {name: b, namespace: x, node: n1, ip: 10.244.1.11}',
        '  - {name: c, namespace: x, node: n1}',
        '  - {name: d, namespace: x, node: n2}',
        '  - {name: e, namespace: x, node: n1, ip: 10.244.1.2}',
      ),
    );
    expect(p.pods.map((x) => `${x.name}=${x.ip}`)).toEqual(['a=10.244.1.10', 'b=10.244.1.11', 'c=10.244.1.12', 'd=10.244.2.10', 'e=10.244.1.2']);
  });

  it('lab spec - a full small CIDR is an error at the pod', () => {
    const pods = Array.from({ length: 6 }, (_, i) => `  - {name: p${i}, namespace: x, node: n1}`);
    const e = errorsOf(lines('nodes:', '  - {name: n1, podCIDR: 10.244.9.0/28}', 'namespaces: [{name: x}]', 'pods:', ...pods));
    expect(e).toEqual([{ line: 10, field: 'pods[5]', detail: expect.stringMatching(/no free address left in node n1's podCIDR 10.244.9.0\/28/) }]);
  });

  it('lab spec - IPv4 and CIDR parsing', () => {
    expect(parseIPv4('10.244.1.10')).toBe(BigInt((10 << 24 >>> 0) + (244 << 16) + (1 << 8) + 10));
    for (const bad of ['10.244.1', '256.1.1.1', '01.2.3.4', '1.2.3.4.5', 'a.b.c.d']) expect(parseIPv4(bad)).toBeUndefined();
    expect(parseCidr('10.244.0.0/16')).toEqual({ cidr: { family: 4, base: parseIPv4('10.244.0.0'), prefix: 16, size: 65536n } });
    expect(parseCidr('10.244.1.1/24')).toEqual({ error: expect.stringMatching(/host bits set \(the network is 10.244.1.0\/24\)/) });
    expect(parseCidr('10.244.1.0/33')).toHaveProperty('error');
  });
});

describe('lab spec - errors name file, line and field', () => {
  it('lab spec - unknown fields, at the key', () => {
    expect(onlyError(lines('nodes:', '  - n1', 'namespaces: []', 'podz: []'))).toEqual({ line: 4, field: 'podz', detail: 'unknown field' });
    expect(onlyError(spec('pods:', '  - name: a', '    namespace: x', '    node: n1', '    lables: {a: b}'))).toEqual({
      line: 10,
      field: 'pods[0].lables',
      detail: 'unknown field',
    });
    expect(onlyError(lines('nodes:', '  - {name: n1, podCidr: 10.244.1.0/24}'))).toMatchObject({ line: 2, field: 'nodes[0].podCidr' });
  });

  it('lab spec - missing nodes, bad names', () => {
    expect(onlyError(lines('namespaces: []'))).toEqual({ line: 1, field: 'nodes', detail: 'required' });
    expect(onlyError(lines('nodes:', '  - N1'))).toMatchObject({ line: 2, field: 'nodes[0].name', detail: expect.stringMatching(/DNS-1123/) });
  });

  it('lab spec - duplicates', () => {
    expect(onlyError(lines('nodes:', '  - n1', '  - n1'))).toEqual({ line: 3, field: 'nodes[1].name', detail: 'duplicate node n1 (first at line 2)' });
    expect(onlyError(lines('nodes: [n1]', 'namespaces:', '  - {name: x}', '  - {name: x}'))).toMatchObject({ line: 4, field: 'namespaces[1].name' });
    expect(onlyError(spec('pods:', '  - {name: a, namespace: x, node: n1}', '  - {name: a, namespace: x, node: n2}'))).toEqual({
      line: 8,
      field: 'pods[1].name',
      detail: 'duplicate pod x/a (first at line 7)',
    });
  });

  it('lab spec - a pod on an unknown node or namespace', () => {
    const e = errorsOf(spec('pods:', '  - name: a', '    namespace: nope', '    node: n9'));
    expect(e).toEqual([
      { line: 8, field: 'pods[0].namespace', detail: 'unknown namespace nope (declare it under namespaces)' },
      { line: 9, field: 'pods[0].node', detail: 'unknown node n9' },
    ]);
  });

  it('lab spec - pod IPs: outside the node CIDR, duplicated, not an address, network address', () => {
    expect(onlyError(spec('pods:', '  - {name: a, namespace: x, node: n1, ip: 10.244.2.10}'))).toEqual({
      line: 7,
      field: 'pods[0].ip',
      detail: "10.244.2.10 is outside node n1's podCIDR 10.244.1.0/24",
    });
    expect(
      onlyError(spec('pods:', '  - {name: a, namespace: x, node: n1, ip: 10.244.1.20}', '  - {name: b, namespace: x, node: n1, ip: 10.244.1.20}')),
    ).toEqual({ line: 8, field: 'pods[1].ip', detail: "10.244.1.20 is already pod x/a's address" });
    expect(onlyError(spec('pods:', '  - {name: a, namespace: x, node: n1, ip: 10.244.1.300}'))).toMatchObject({ field: "pods[0].ip", detail: expect.stringMatching(/not an IP address/) });
    expect(onlyError(spec('pods:', '  - {name: a, namespace: x, node: n1, ip: 10.244.1.0}'))).toMatchObject({ detail: expect.stringMatching(/network or broadcast/) });
  });

  it('lab spec - podCIDR outside 10.244.0.0/16, overlapping, malformed', () => {
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDR: 10.245.1.0/24}'))).toEqual({
      line: 2,
      field: 'nodes[0].podCIDR',
      detail: '10.245.1.0/24 must lie inside 10.244.0.0/16 (and be smaller than it)',
    });
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDR: 10.244.0.0/16}'))).toMatchObject({ field: 'nodes[0].podCIDR' });
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDR: 10.244.4.0/23}', '  - {name: n2, podCIDR: 10.244.5.0/24}'))).toEqual({
      line: 3,
      field: 'nodes[1].podCIDR',
      detail: "10.244.5.0/24 overlaps node n1's 10.244.4.0/23",
    });
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDR: nonsense}'))).toMatchObject({ detail: expect.stringMatching(/not a CIDR/) });
  });

  it('lab spec - bad labels', () => {
    expect(onlyError(lines('nodes: [n1]', 'namespaces:', '  - name: x', '    labels: {"-bad": v}'))).toMatchObject({
      line: 4,
      field: 'namespaces[0].labels.-bad',
      detail: expect.stringMatching(/invalid label key "-bad"/),
    });
    expect(onlyError(spec('pods:', '  - name: a', '    namespace: x', '    node: n1', '    labels:', `      app: ${'v'.repeat(64)}`))).toMatchObject({
      line: 11,
      field: 'pods[0].labels.app',
      detail: expect.stringMatching(/invalid label value: must be at most 63/),
    });
    expect(onlyError(lines('nodes: [n1]', 'namespaces: [{name: x, labels: {kubernetes.io/metadata.name: y}}]'))).toMatchObject({ line: 2 });
    expect(onlyError(lines('nodes:', '  - n1', '  - {name: n2, labels: {kubernetes.io/hostname: n1}}'))).toMatchObject({
      line: 3,
      field: 'nodes[1].labels.kubernetes.io/hostname',
      detail: expect.stringMatching(/must be the node's name \(n2\)/),
    });
    expect(onlyError(lines('nodes:', '  - {name: n1, labels: {"zone!": a}}'))).toMatchObject({ line: 2, field: 'nodes[0].labels.zone!' });
  });

  it('lab spec - ports: range, protocol, duplicates', () => {
    const pod = (...ports: string[]) => spec('pods:', '  - name: a', '    namespace: x', '    node: n1', '    ports:', ...ports);
    expect(onlyError(pod('      - {port: 0, protocol: TCP}'))).toEqual({ line: 11, field: 'pods[0].ports[0].port', detail: 'must be an integer from 1 to 65535, got 0' });
    expect(onlyError(pod('      - {port: 65536, protocol: UDP}'))).toMatchObject({ field: 'pods[0].ports[0].port' });
    expect(onlyError(pod('      - {port: "80", protocol: UDP}'))).toMatchObject({ field: 'pods[0].ports[0].port', detail: 'expected a number, got "80"' });
    expect(onlyError(pod('      - {port: 80, protocol: SCTP}'))).toMatchObject({ field: 'pods[0].ports[0].protocol', detail: expect.stringMatching(/unsupported protocol "SCTP"/) });
    expect(onlyError(pod('      - {port: 80, protocol: TCP}', '      - {port: 80, protocol: TCP}'))).toEqual({ line: 12, field: 'pods[0].ports[1]', detail: 'port 80/TCP is declared twice' });
    expect(onlyError(pod('      - {name: Web, port: 80, protocol: TCP}'))).toMatchObject({ field: 'pods[0].ports[0].name' });
  });

  it('lab spec - YAML syntax errors and extra documents are located', () => {
    expect(onlyError(lines('nodes: [n1', 'pods: []'))).toMatchObject({ field: '', detail: expect.stringMatching(/^YAML: /) });
    expect(onlyError(lines('nodes: [n1]', '---', 'nodes: [n2]'))).toEqual({ line: 3, field: '', detail: 'a lab spec is one YAML document' });
  });
});

describe('lab spec - clients', () => {
  it('lab spec - clients are names or {name}, addressed from 10.250.0.200 up on the underlay', () => {
    const plan = parseLabSpec(lines('nodes: [n1, n2]', 'clients:', '  - outside', '  - {name: lb-tester}'), FILE);
    expect(plan.clients).toEqual([
      { name: 'outside', netns: 'tp-client-outside', ip: '10.250.0.200', ips: ['10.250.0.200'], bridgeIf: clientBridgeIf('outside'), socket: '/run/tcplane/lab/clients/outside.sock' },
      { name: 'lb-tester', netns: 'tp-client-lb-tester', ip: '10.250.0.201', ips: ['10.250.0.201'], bridgeIf: clientBridgeIf('lb-tester'), socket: '/run/tcplane/lab/clients/lb-tester.sock' },
    ]);
    expect(parseLabSpec(lines('nodes: [n1]'), FILE).clients).toEqual([]);
    expect(parseLabSpec(lines('nodes: [n1]', 'clients: []'), FILE).clients).toEqual([]);
  });

  it('lab spec - a client veth name fits IFNAMSIZ however long the name, and differs from the other tp- links', () => {
    const plan = parseLabSpec(lines('nodes: [n1]', `clients: [${'c'.repeat(63)}]`), FILE);
    expect(plan.clients[0].bridgeIf).toMatch(/^tp-c[0-9a-f]{8}$/);
    expect(plan.clients[0].bridgeIf).not.toBe(uplinkPeerIf(plan.clients[0].name));
    expect(plan.clients[0].netns).toBe(`tp-client-${'c'.repeat(63)}`); // netns names are files: no 15-character limit
  });

  it('lab spec - the example lab has one client, outside', () => {
    const plan = parseLabSpec(readFileSync('labs/three-nodes.yaml', 'utf8'), 'labs/three-nodes.yaml');
    expect(plan.clients.map((c) => [c.name, c.ip])).toEqual([['outside', '10.250.0.200']]);
  });

  it('lab spec - client errors name file, line and field', () => {
    expect(onlyError(lines('nodes: [n1]', 'clients:', '  - outside', '  - outside'))).toEqual({
      line: 4,
      field: 'clients[1].name',
      detail: 'duplicate client outside (first at line 3)',
    });
    expect(onlyError(lines('nodes:', '  - n1', 'clients:', '  - n1'))).toEqual({
      line: 4,
      field: 'clients[0].name',
      detail: 'client n1 has the name of the node at line 2 (nodes and clients need different names)',
    });
    expect(onlyError(lines('nodes: [n1]', 'clients:', '  - Outside'))).toMatchObject({ line: 3, field: 'clients[0].name', detail: expect.stringMatching(/DNS-1123/) });
    expect(onlyError(lines('nodes: [n1]', 'clients:', '  - {name: outside, ip: 10.250.0.5}'))).toMatchObject({ line: 3, field: 'clients[0].ip', detail: 'unknown field' });
    expect(onlyError(lines('nodes: [n1]', 'clients:', '  - 7'))).toMatchObject({ line: 3, field: 'clients[0]' });
    expect(onlyError(lines('nodes: [n1]', 'clients: outside'))).toMatchObject({ line: 2, field: 'clients', detail: expect.stringMatching(/expected a list/) });
    const many = Array.from({ length: 56 }, (_, i) => `  - c${i}`);
    expect(onlyError(lines('nodes: [n1]', 'clients:', ...many))).toEqual({ line: 3, field: 'clients', detail: 'at most 55 clients (client addresses are 10.250.0.200-254)' });
    expect(parseLabSpec(lines('nodes: [n1]', 'clients:', ...many.slice(1)), FILE).clients.at(-1)?.ip).toBe('10.250.0.254');
  });

  it('lab spec - nodes stop at 10.250.0.190, below the clients', () => {
    const nodes = Array.from({ length: 182 }, (_, i) => `  - n${i}`);
    expect(onlyError(lines('nodes:', ...nodes))).toEqual({ line: 2, field: 'nodes', detail: 'at most 181 nodes (node addresses are 10.250.0.10-190)' });
  });
});

describe('lab spec - services', () => {
  const withService = (...svc: string[]) => lines('nodes: [n1]', 'namespaces: [{name: x}]', 'services:', ...svc);

  it('lab spec - services are parsed as apply parses them, in the lab namespaces', () => {
    const plan = parseLabSpec(
      withService('  - apiVersion: v1', '    kind: Service', '    metadata: {name: web, namespace: x}', '    spec: {selector: {app: web}, ports: [{port: 80}]}'),
      FILE,
    );
    expect(plan.services.map((s) => [s.service.namespace, s.service.name, s.service.ports[0]!.targetPort, s.service.source.line])).toEqual([['x', 'web', 80, 4]]);
  });

  it("lab spec - a bad service is located in LAB.yaml under services[i]; an undeclared namespace is one", () => {
    expect(onlyError(withService('  - apiVersion: v1', '    kind: Service', '    metadata: {name: web, namespace: x}', '    spec: {selector: {app: web}, ports: [{port: 70000}]}'))).toEqual({
      line: 7,
      field: 'services[0].spec.ports[0].port',
      detail: 'must be an integer from 1 to 65535, got 70000',
    });
    expect(onlyError(withService('  - apiVersion: v1', '    kind: Service', '    metadata: {name: web, namespace: y}', '    spec: {selector: {app: web}, ports: [{port: 80}]}'))).toMatchObject({
      field: 'services[0].metadata.namespace',
      detail: 'unknown namespace y (declare it under namespaces)',
    });
  });

  it("lab spec - node pod ranges stay out of the service range", () => {
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDR: 10.244.241.0/24}'))).toMatchObject({ line: 2, field: 'nodes[0].podCIDR', detail: "10.244.241.0/24 overlaps the lab's service range 10.244.240.0/20" });
  });
});

describe('lab spec - serviceCIDR', () => {
  it('lab spec - the service range defaults to 10.244.240.0/20 and may be given', () => {
    expect(parseLabSpec(lines('nodes: [n1]'), FILE).serviceCIDR).toBe('10.244.240.0/20');
    expect(parseLabSpec(lines('nodes: [n1]', 'serviceCIDR: 10.96.0.0/16'), FILE).serviceCIDR).toBe('10.96.0.0/16');
  });

  it('lab spec - node ranges are allocated around a service range inside the pod range', () => {
    const plan = parseLabSpec(lines('nodes: [n1, n2, n3]', 'serviceCIDR: 10.244.2.0/24'), FILE);
    expect(plan.nodes.map((n) => n.podCIDR)).toEqual(['10.244.1.0/24', '10.244.3.0/24', '10.244.4.0/24']);
  });

  it('lab spec - a bad serviceCIDR names its line', () => {
    expect(onlyError(lines('nodes: [n1]', 'serviceCIDR: 10.96.0.1/16'))).toEqual({
      line: 2,
      field: 'serviceCIDR',
      detail: '10.96.0.1/16 has host bits set (the network is 10.96.0.0/16)',
    });
    expect(onlyError(lines('nodes: [n1]', 'serviceCIDR: 10.0.0.0/8'))).toMatchObject({ line: 2, field: 'serviceCIDR', detail: '10.0.0.0/8 must be a /12 to /28' });
    expect(onlyError(lines('nodes: [n1]', 'serviceCIDR: 10.250.0.0/16'))).toMatchObject({ detail: '10.250.0.0/16 overlaps the underlay 10.250.0.0/24' });
    expect(onlyError(lines('nodes: [n1]', 'serviceCIDR: 10.250.1.128/25'))).toMatchObject({ detail: '10.250.1.128/25 overlaps the external and load balancer range 10.250.1.0/24' });
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDR: 10.244.9.0/24}', 'serviceCIDR: 10.244.8.0/22'))).toEqual({
      line: 2,
      field: 'nodes[0].podCIDR',
      detail: "10.244.9.0/24 overlaps the lab's service range 10.244.8.0/22",
    });
  });
});

describe('lab spec - dual-stack', () => {
  const dual = (...pods: string[]) =>
    lines('nodes:', '  - n1', '  - {name: n2, podCIDRs: [10.244.2.0/24, "fd00:10:244:2::/64"]}', '  - {name: n3, podCIDR: 10.244.7.0/24}', 'namespaces: [{name: x}]', 'clients: [outside]', ...pods);

  it('lab spec - one IPv6 range makes the lab dual-stack: every node, pod and client gets both families', () => {
    const p = parseLabSpec(
      dual('pods:', '  - {name: a, namespace: x, node: n1}', '  - {name: b, namespace: x, node: n2, ip: 10.244.2.20}', '  - {name: c, namespace: x, node: n3, ips: ["fd00:10:244:7::c"]}'),
      FILE,
    );
    expect(p.families).toEqual([4, 6]);
    expect(p.nodes.map((n) => n.podCIDRs)).toEqual([
      ['10.244.1.0/24', 'fd00:10:244:1::/64'],
      ['10.244.2.0/24', 'fd00:10:244:2::/64'],
      ['10.244.7.0/24', 'fd00:10:244:7::/64'],
    ]);
    expect(p.nodes.map((n) => n.underlayIPs)).toEqual([
      ['10.250.0.10', 'fd00:10:250::10'],
      ['10.250.0.11', 'fd00:10:250::11'],
      ['10.250.0.12', 'fd00:10:250::12'],
    ]);
    // The other family's address is the twin of the given one (host .10 ↔ ::a, .20 ↔ ::14, ::c ↔ .12).
    expect(p.pods.map((x) => x.ips)).toEqual([
      ['10.244.1.10', 'fd00:10:244:1::a'],
      ['10.244.2.20', 'fd00:10:244:2::14'],
      ['10.244.7.12', 'fd00:10:244:7::c'],
    ]);
    expect(p.pods.map((x) => x.ip)).toEqual(['10.244.1.10', '10.244.2.20', '10.244.7.12']);
    expect(p.clients[0]!.ips).toEqual(['10.250.0.200', 'fd00:10:250::200']);
  });

  it('lab spec - a single-stack lab stays IPv4 only', () => {
    const p = parseLabSpec(spec('pods:', '  - {name: a, namespace: x, node: n1}'), FILE);
    expect(p.families).toEqual([4]);
    expect(p.nodes[0]!.podCIDRs).toEqual(['10.244.1.0/24']);
    expect(p.pods[0]!.ips).toEqual(['10.244.1.10']);
  });

  it('lab spec - a taken twin falls back to the first free address of its family', () => {
    const p = parseLabSpec(dual('pods:', '  - {name: a, namespace: x, node: n1, ips: [10.244.1.11, "fd00:10:244:1::a"]}', '  - {name: b, namespace: x, node: n1, ip: 10.244.1.10}'), FILE);
    expect(p.pods.map((x) => x.ips)).toEqual([
      ['10.244.1.11', 'fd00:10:244:1::a'],
      ['10.244.1.10', 'fd00:10:244:1::b'],
    ]);
  });

  it('lab spec - dual-stack errors name their line and field', () => {
    const head = ['namespaces: [{name: x}]'];
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDRs: [10.244.1.0/24, 10.244.2.0/24]}'))).toMatchObject({
      line: 2,
      field: 'nodes[0].podCIDRs[1]',
      detail: expect.stringMatching(/second IPv4 range/),
    });
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDRs: ["fd00:10:245:1::/64"]}'))).toMatchObject({
      field: 'nodes[0].podCIDRs[0]',
      detail: 'fd00:10:245:1::/64 must lie inside fd00:10:244::/48 (and be smaller than it)',
    });
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDRs: ["fd00:10:244:1::/124"]}'))).toMatchObject({ detail: expect.stringMatching(/too small for pods \(at most \/120\)/) });
    expect(onlyError(lines('nodes:', '  - {name: n1, podCIDR: 10.244.1.0/24, podCIDRs: [10.244.1.0/24]}'))).toMatchObject({ field: 'nodes[0].podCIDRs', detail: 'give podCIDR or podCIDRs, not both' });
    expect(onlyError(lines('nodes: [n1]', ...head, 'pods:', '  - {name: a, namespace: x, node: n1, ips: ["fd00:10:244:2::a"]}'))).toMatchObject({
      line: 4,
      field: 'pods[0].ips[0]',
      detail: "fd00:10:244:2::a is outside node n1's podCIDR fd00:10:244:1::/64",
    });
    expect(onlyError(lines('nodes: [n1]', ...head, 'pods:', '  - {name: a, namespace: x, node: n1, ips: ["fd00:10:244:1::a", "fd00:10:244:1::b"]}'))).toMatchObject({
      field: 'pods[0].ips[1]',
      detail: expect.stringMatching(/second IPv6 address/),
    });
    expect(onlyError(lines('nodes: [n1]', ...head, 'pods:', '  - {name: a, namespace: x, node: n1, ips: ["fd00:10:244:1::"]}'))).toMatchObject({ detail: expect.stringMatching(/is the network address of/) });
    expect(onlyError(lines('nodes: [n1]', ...head, 'pods:', '  - {name: a, namespace: x, node: n1, ip: 10.244.1.10, ips: [10.244.1.10]}'))).toMatchObject({ field: 'pods[0].ips', detail: 'give ip or ips, not both' });
    expect(onlyError(lines('nodes: [n1]', 'serviceCIDR: "fd00:10:96::/112"'))).toMatchObject({ field: 'serviceCIDR', detail: expect.stringMatching(/not IPv4/) });
  });
});

describe('lab label - arguments', () => {
  it('lab label - KEY=VALUE sets, KEY- removes, empty values are allowed', () => {
    const ch = parseLabelChanges(['app=web', 'example.com/tier=', 'old-']);
    expect(ch).toEqual({ set: { app: 'web', 'example.com/tier': '' }, remove: ['old'] });
    expect(applyLabelChanges({ old: '1', app: 'db', keep: 'k' }, ch)).toEqual({ app: 'web', 'example.com/tier': '', keep: 'k' });
  });

  it('lab label - bad syntax is refused naming the argument', () => {
    expect(() => parseLabelChanges([])).toThrow(/at least one/);
    expect(() => parseLabelChanges(['app'])).toThrow(/"app": expected KEY=VALUE or KEY-/);
    expect(() => parseLabelChanges(['-app=x'])).toThrow(/invalid label key/);
    expect(() => parseLabelChanges([`app=${'x'.repeat(64)}`])).toThrow(/invalid label value/);
    expect(() => parseLabelChanges(['app=x', 'app-'])).toThrow(/given twice/);
  });
});
