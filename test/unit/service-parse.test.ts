import { describe, expect, it } from 'vitest';
import { ServiceError } from '../../src/services/errors.js';
import { parseServiceDocument, parseServiceText } from '../../src/services/parse.js';
import { serviceSchema } from '../../src/services/schema.js';
import type { Service } from '../../src/services/types.js';
import { LocatedErrors, parseYamlDocuments, type LocatedError } from '../../src/yaml/located.js';

const FILE = 'services/test.yaml';

/** Lines joined with newlines, so a test can count lines: element i is line i + 1. */
const lines = (...ls: string[]) => ls.join('\n') + '\n';

/** A Service `web` in namespace default: four header lines (`spec:` is line 4), then `spec` lines from line 5. */
const svc = (...spec: string[]) => lines('apiVersion: v1', 'kind: Service', 'metadata: {name: web}', 'spec:', ...spec);
const SEL = '  selector: {app: web}';
const PORT = '  ports: [{port: 80}]';

const SCTP = 'SCTP ports need targetPort equal to port: tcplane cannot rewrite an SCTP port (its CRC32c checksum has no BPF helper)';
const SCTP_NODE_PORT =
  'SCTP ports cannot have a node port: traffic to it would need its port rewritten to targetPort, which tcplane cannot do for SCTP (its CRC32c checksum has no BPF helper); use type ClusterIP, externalIPs, or a LoadBalancer with allocateLoadBalancerNodePorts: false';
const NO_SELECTOR =
  'a Service without a selector takes its endpoints from EndpointSlices managed elsewhere, which tcplane does not support yet';

/** The normalized service with every default, `over` replacing fields. */
const service = (over: Partial<Service>): Service => ({
  kind: 'Service',
  apiVersion: 'v1',
  namespace: 'default',
  name: 'web',
  type: 'ClusterIP',
  selector: { app: 'web' },
  clusterIPs: [],
  ipFamilies: [],
  ports: [{ protocol: 'TCP', port: 80, targetPort: 80 }],
  externalIPs: [],
  loadBalancerIngress: [],
  sessionAffinity: 'None',
  sessionAffinityTimeoutSeconds: 0,
  externalTrafficPolicy: 'Cluster',
  internalTrafficPolicy: 'Cluster',
  allocateLoadBalancerNodePorts: true,
  publishNotReadyAddresses: false,
  source: { file: FILE, line: 1 },
  ...over,
});

/** Parses text that must fail; returns every error, checking each is a ServiceError. */
function errorsOf(text: string): ServiceError[] {
  try {
    parseServiceText(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(LocatedErrors);
    const errors = (err as LocatedErrors).errors;
    for (const e of errors) expect(e).toBeInstanceOf(ServiceError);
    return errors as ServiceError[];
  }
  throw new Error('expected parseServiceText to throw');
}

/** The single error of text, as {line, field, detail}. */
function onlyError(text: string) {
  const errors = errorsOf(text);
  expect(errors.map((e) => e.message)).toHaveLength(1);
  const [e] = errors;
  return { line: e.line, field: e.field, detail: e.detail };
}

// ---- valid documents and their exact normalized form ----

const VALID: [string, string, Service][] = [
  ['the smallest service: every default applied', svc(SEL, PORT), service({})],
  [
    'several ports: UDP, SCTP, named and defaulted targetPorts, appProtocol dropped',
    lines(
      'apiVersion: v1',
      'kind: Service',
      'metadata: {name: web, namespace: x}',
      'spec:',
      '  selector: {app: web, tier: front}',
      '  ports:',
      '    - {name: http, port: 80, targetPort: serve-80-tcp, appProtocol: kubernetes.io/h2c}',
      '    - {name: dns, port: 53, protocol: UDP, targetPort: 5353}',
      '    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 0}',
      '    - {name: sig, port: 2905, protocol: SCTP, targetPort: 2905}',
      '    - {name: "80", port: 8080, targetPort: ""}',
    ),
    service({
      namespace: 'x',
      selector: { app: 'web', tier: 'front' },
      ports: [
        { name: 'http', protocol: 'TCP', port: 80, targetPort: 'serve-80-tcp' },
        { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 },
        { name: 'dns-tcp', protocol: 'TCP', port: 53, targetPort: 53 },
        { name: 'sig', protocol: 'SCTP', port: 2905, targetPort: 2905 },
        { name: '80', protocol: 'TCP', port: 8080, targetPort: 8080 },
      ],
    }),
  ],
  [
    'NodePort: nodePorts given or left to allocation, the same nodePort for TCP and UDP, ClientIP with the default timeout',
    svc(
      '  type: NodePort',
      SEL,
      '  ports:',
      '    - {name: http, port: 80, nodePort: 30080}',
      '    - {name: dns, port: 53, protocol: UDP, nodePort: 30080}',
      '    - {name: alloc, port: 8080, nodePort: 0}',
      '  externalTrafficPolicy: Local',
      '  internalTrafficPolicy: Local',
      '  sessionAffinity: ClientIP',
    ),
    service({
      type: 'NodePort',
      ports: [
        { name: 'http', protocol: 'TCP', port: 80, targetPort: 80, nodePort: 30080 },
        { name: 'dns', protocol: 'UDP', port: 53, targetPort: 53, nodePort: 30080 },
        { name: 'alloc', protocol: 'TCP', port: 8080, targetPort: 8080 },
      ],
      externalTrafficPolicy: 'Local',
      internalTrafficPolicy: 'Local',
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeoutSeconds: 10800,
    }),
  ],
  [
    'LoadBalancer: every field it may set, ingress IPs from status',
    svc(
      '  type: LoadBalancer',
      SEL,
      '  ports: [{port: 443, targetPort: 8443}]',
      '  clusterIP: 10.244.240.10',
      '  clusterIPs: [10.244.240.10]',
      '  ipFamilies: [IPv4]',
      '  ipFamilyPolicy: PreferDualStack',
      '  externalIPs: [10.250.1.10, 10.250.1.11]',
      '  externalTrafficPolicy: Local',
      '  healthCheckNodePort: 32000',
      '  allocateLoadBalancerNodePorts: false',
      '  publishNotReadyAddresses: true',
      '  sessionAffinity: ClientIP',
      '  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}',
      'status:',
      '  loadBalancer:',
      '    ingress:',
      '      - ip: 10.250.1.20',
      '      - {ip: 10.250.1.21, ipMode: VIP}',
    ),
    service({
      type: 'LoadBalancer',
      clusterIPs: ['10.244.240.10'],
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'PreferDualStack',
      ports: [{ protocol: 'TCP', port: 443, targetPort: 8443 }],
      externalIPs: ['10.250.1.10', '10.250.1.11'],
      loadBalancerIngress: ['10.250.1.20', '10.250.1.21'],
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeoutSeconds: 60,
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32000,
      allocateLoadBalancerNodePorts: false,
      publishNotReadyAddresses: true,
    }),
  ],
  ['headless without ports', svc('  clusterIP: None', SEL), service({ clusterIPs: ['None'], ports: [] })],
  [
    'LoadBalancer without node ports may have SCTP ports (nothing to rewrite)',
    svc('  type: LoadBalancer', SEL, '  ports: [{port: 2905, protocol: SCTP}]', '  allocateLoadBalancerNodePorts: false'),
    service({ type: 'LoadBalancer', ports: [{ protocol: 'SCTP', port: 2905, targetPort: 2905 }], allocateLoadBalancerNodePorts: false }),
  ],
  [
    'headless through clusterIPs: no translation, so an SCTP targetPort may differ',
    svc(SEL, '  clusterIPs: [None]', '  ports: [{port: 2905, protocol: SCTP, targetPort: 2906}]'),
    service({ clusterIPs: ['None'], ports: [{ protocol: 'SCTP', port: 2905, targetPort: 2906 }] }),
  ],
  [
    'ClusterIP with externalIPs may choose externalTrafficPolicy',
    svc(SEL, PORT, '  clusterIPs: [10.244.240.11]', '  externalIPs: [10.250.1.12]', '  externalTrafficPolicy: Local'),
    service({ clusterIPs: ['10.244.240.11'], ipFamilies: ['IPv4'], externalIPs: ['10.250.1.12'], externalTrafficPolicy: 'Local' }),
  ],
  [
    'kubectl get -o yaml output: server fields, empty and null values read as absent',
    lines(
      'apiVersion: v1',
      'kind: Service',
      'metadata:',
      '  name: web',
      '  namespace: prod',
      '  labels: {app: web, example.com/team: a}',
      '  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}',
      '  uid: 0b5c0b4e-0000-4000-8000-000000000000',
      '  resourceVersion: "1234"',
      '  creationTimestamp: "2024-01-01T00:00:00Z"',
      'spec:',
      '  clusterIP: ""',
      '  internalTrafficPolicy: Cluster',
      '  ipFamilies: []',
      '  ipFamilyPolicy: SingleStack',
      '  ports:',
      '    - name: http',
      '      port: 80',
      '      protocol: TCP',
      '      targetPort: 80',
      '  selector: {app: web}',
      '  sessionAffinity: None',
      '  sessionAffinityConfig:',
      '  type: ClusterIP',
      '  externalIPs:',
      '  loadBalancerIP: ""',
      '  loadBalancerSourceRanges: []',
      '  externalName: ""',
      'status:',
      '  loadBalancer: {}',
    ),
    service({ namespace: 'prod', ipFamilyPolicy: 'SingleStack', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 80 }] }),
  ],
];

describe('service parse - valid input', () => {
  it.each(VALID)('service parse - %s', (_, text, want) => {
    // toStrictEqual: normalized objects carry no keys set to undefined.
    expect(parseServiceText(text, FILE)).toStrictEqual([want]);
  });

  it('service parse - a multi-document file keeps order and each document line; empty documents are skipped', () => {
    const text = svc(SEL, PORT) + lines('---', '# nothing', '---') + svc(SEL, PORT).replace('{name: web}', '{name: web, namespace: b}');
    expect(parseServiceText(text, FILE)).toStrictEqual([service({}), service({ namespace: 'b', source: { file: FILE, line: 10 } })]);
    expect(parseServiceText('', FILE)).toEqual([]);
  });

  it('service parse - parseServiceDocument appends its errors to the caller list and returns the service or undefined', () => {
    const { docs } = parseYamlDocuments(svc(SEL, PORT) + '---\n' + svc(SEL, '  ports: [{port: 0}]'), FILE);
    const errors: LocatedError[] = [new ServiceError(FILE, 99, 'x', 'an earlier error')];
    expect(parseServiceDocument(docs[0], FILE, errors)).toStrictEqual(service({}));
    expect(parseServiceDocument(docs[1], FILE, errors)).toBeUndefined();
    expect(errors.map((e) => e.message)).toEqual([
      `${FILE}:99: x: an earlier error`,
      `${FILE}:13: spec.ports[0].port: must be an integer from 1 to 65535, got 0`,
    ]);
    expect(errors[1]).toBeInstanceOf(ServiceError);
  });
});

// ---- every rule, with its exact located message ----

const NP = '  type: NodePort';
const LB = '  type: LoadBalancer';
const TWO_PORTS = (a: string, b: string) => ['  ports:', `    - ${a}`, `    - ${b}`];
const ingress = (...entries: string[]) => ['status:', '  loadBalancer:', '    ingress:', ...entries.map((e) => `      - ${e}`)];
const meta = (m: string) => lines('apiVersion: v1', 'kind: Service', `metadata: ${m}`, 'spec:', SEL, PORT);

const ERRORS: [string, string, number, string, string][] = [
  // document, apiVersion, kind, metadata
  ['a document that is not a mapping', lines('- a', '- b'), 1, '', 'a document must be a mapping with apiVersion, kind, metadata and spec, got a list'],
  ['a wrong apiVersion', svc(SEL, PORT).replace('v1', 'apps/v1'), 1, 'apiVersion', 'expected v1 for kind Service, got "apps/v1"'],
  ['a missing apiVersion', lines('kind: Service', 'metadata: {name: web}', 'spec:', SEL, PORT), 1, 'apiVersion', 'required (v1)'],
  ['another kind', svc(SEL, PORT).replace('kind: Service', 'kind: NetworkPolicy'), 2, 'kind', 'expected Service, got "NetworkPolicy" (only Service documents are read here)'],
  ['a missing kind', lines('apiVersion: v1', 'metadata: {name: web}'), 1, 'kind', 'required (Service)'],
  ['a name that starts with a digit', meta('{name: 1web}'), 3, 'metadata.name', 'must be lowercase alphanumeric or "-", starting with a letter and ending alphanumeric (a DNS-1035 label)'],
  ['a name of 64 characters', meta(`{name: ${'w'.repeat(64)}}`), 3, 'metadata.name', 'must be at most 63 characters (has 64)'],
  ['a missing name', meta('{namespace: x}'), 3, 'metadata.name', 'required'],
  ['a bad namespace', meta('{name: web, namespace: Prod}'), 3, 'metadata.namespace', 'must be lowercase alphanumeric or "-", starting and ending alphanumeric (a DNS-1123 label)'],
  ['a number as a label value', meta('{name: web, labels: {version: 2}}'), 3, 'metadata.labels.version', 'label values are strings: quote it ("2")'],
  ['a bad annotation key', meta('{name: web, annotations: {"a/b/c": x}}'), 3, 'metadata.annotations.a/b/c', 'invalid annotation key "a/b/c": a label key is a name with an optional DNS prefix (example.com/name), with at most one "/"'],
  ['a missing spec', lines('apiVersion: v1', 'kind: Service', 'metadata: {name: web}'), 1, 'spec', 'required'],
  // type
  ['type ExternalName', svc(SEL, PORT, '  type: ExternalName'), 7, 'spec.type', 'type ExternalName is not supported yet (supported: ClusterIP, NodePort, LoadBalancer)'],
  ['an unknown type', svc(SEL, PORT, '  type: Internal'), 7, 'spec.type', 'unknown type "Internal" (supported: ClusterIP, NodePort, LoadBalancer)'],
  ['externalName', svc(SEL, PORT, '  externalName: db.example.com'), 7, 'spec.externalName', 'externalName is not supported yet (it belongs to type ExternalName)'],
  // selector
  ['no selector', svc(PORT), 4, 'spec.selector', `required: ${NO_SELECTOR}`],
  ['an empty selector', svc('  selector: {}', PORT), 5, 'spec.selector', `an empty selector is no selector to Kubernetes: ${NO_SELECTOR}`],
  ['a bad selector key', svc('  selector: {-app: web}', PORT), 5, 'spec.selector.-app', 'invalid label key "-app": the name must be alphanumeric, "-", "_" or ".", starting and ending alphanumeric'],
  // ports
  ['no ports', svc(SEL), 4, 'spec.ports', 'at least one port is required (only a headless service, clusterIP None, may have none)'],
  ['an empty port list', svc(SEL, '  ports: []'), 6, 'spec.ports', 'at least one port is required (only a headless service, clusterIP None, may have none)'],
  ['port 0', svc(SEL, '  ports: [{port: 0}]'), 6, 'spec.ports[0].port', 'must be an integer from 1 to 65535, got 0'],
  ['port 65536', svc(SEL, '  ports:', '    - port: 65536'), 7, 'spec.ports[0].port', 'must be an integer from 1 to 65535, got 65536'],
  ['a quoted port', svc(SEL, '  ports: [{port: "80"}]'), 6, 'spec.ports[0].port', 'must be an integer from 1 to 65535, got "80"'],
  ['a missing port', svc(SEL, '  ports:', '    - targetPort: 80'), 7, 'spec.ports[0].port', 'required'],
  ['an unnamed port among several', svc(SEL, ...TWO_PORTS('{name: http, port: 80}', '{port: 81}')), 8, 'spec.ports[1].name', 'required when a service has more than one port'],
  ['a duplicate port name', svc(SEL, ...TWO_PORTS('{name: http, port: 80}', '{name: http, port: 81}')), 8, 'spec.ports[1].name', 'duplicate port name "http" (also spec.ports[0])'],
  ['a port name that is no DNS label', svc(SEL, '  ports: [{name: Http, port: 80}]'), 6, 'spec.ports[0].name', 'must be lowercase alphanumeric or "-", starting and ending alphanumeric (a DNS-1123 label)'],
  ['an unknown protocol', svc(SEL, '  ports: [{port: 80, protocol: tcp}]'), 6, 'spec.ports[0].protocol', 'unknown protocol "tcp" (supported: TCP, UDP, SCTP)'],
  ['targetPort out of range', svc(SEL, '  ports: [{port: 80, targetPort: 70000}]'), 6, 'spec.ports[0].targetPort', 'must be an integer from 1 to 65535, got 70000'],
  ['a quoted targetPort number', svc(SEL, '  ports: [{port: 80, targetPort: "8080"}]'), 6, 'spec.ports[0].targetPort', 'a named targetPort is an IANA service name: must contain at least one letter (a port number is written unquoted: 8080)'],
  ['a targetPort name with "--"', svc(SEL, '  ports: [{port: 80, targetPort: web--api}]'), 6, 'spec.ports[0].targetPort', 'a named targetPort is an IANA service name: must be lowercase alphanumeric or "-", alphanumeric at both ends, without "--"'],
  ['a targetPort name over 15 characters', svc(SEL, '  ports: [{port: 80, targetPort: serve-http-main-1}]'), 6, 'spec.ports[0].targetPort', 'a named targetPort is an IANA service name: must be at most 15 characters (has 17)'],
  ['a nodePort on a ClusterIP service', svc(SEL, '  ports: [{port: 80, nodePort: 30080}]'), 6, 'spec.ports[0].nodePort', 'only allowed with type NodePort or LoadBalancer, not ClusterIP'],
  ['a nodePort out of range', svc(NP, SEL, '  ports: [{port: 80, nodePort: 70000}]'), 7, 'spec.ports[0].nodePort', 'must be an integer from 1 to 65535, got 70000'],
  ['a duplicate port and protocol', svc(SEL, ...TWO_PORTS('{name: a, port: 80}', '{name: b, port: 80, protocol: TCP}')), 8, 'spec.ports[1]', 'duplicate port 80/TCP (also spec.ports[0])'],
  ['a duplicate nodePort of one protocol', svc(NP, SEL, ...TWO_PORTS('{name: a, port: 80, nodePort: 30080}', '{name: b, port: 81, nodePort: 30080}')), 9, 'spec.ports[1].nodePort', 'duplicate nodePort 30080/TCP (also spec.ports[0])'],
  ['an SCTP targetPort that differs', svc(SEL, '  ports: [{port: 2905, protocol: SCTP, targetPort: 2906}]'), 6, 'spec.ports[0].targetPort', SCTP],
  ['a named SCTP targetPort', svc(SEL, '  ports: [{port: 2905, protocol: SCTP, targetPort: sigtran}]'), 6, 'spec.ports[0].targetPort', SCTP],
  ['an SCTP port of a NodePort service', svc(NP, SEL, '  ports: [{port: 2905, protocol: SCTP}]'), 7, 'spec.ports[0].protocol', SCTP_NODE_PORT],
  ['an SCTP port of a LoadBalancer service with node ports', svc(LB, SEL, '  ports: [{port: 2905, protocol: SCTP}]'), 7, 'spec.ports[0].protocol', SCTP_NODE_PORT],
  ['an SCTP nodePort given to a LoadBalancer without allocation', svc(LB, SEL, '  ports: [{port: 2905, protocol: SCTP, nodePort: 30905}]', '  allocateLoadBalancerNodePorts: false'), 7, 'spec.ports[0].protocol', SCTP_NODE_PORT],
  ['a bad appProtocol', svc(SEL, '  ports: [{port: 80, appProtocol: "h 2"}]'), 6, 'spec.ports[0].appProtocol', 'must be a qualified name like http or kubernetes.io/h2c: the name must be alphanumeric, "-", "_" or ".", starting and ending alphanumeric'],
  ['an unknown port field', svc(SEL, '  ports:', '    - port: 80', '      hostPort: 80'), 8, 'spec.ports[0].hostPort', 'unknown field'],
  // cluster IPs and families
  ['a clusterIP that does not parse', svc(SEL, PORT, '  clusterIP: 10.0.0.256'), 7, 'spec.clusterIP', 'must be an IPv4 or IPv6 address, or "None" (headless), got "10.0.0.256" (each part 0 to 255, without leading zeros)'],
  ['a clusterIP with a leading zero', svc(SEL, PORT, '  clusterIP: 10.0.0.010'), 7, 'spec.clusterIP', 'must be an IPv4 or IPv6 address, or "None" (headless), got "10.0.0.010" (each part 0 to 255, without leading zeros)'],
  ['clusterIP none in lower case', svc(SEL, PORT, '  clusterIP: none'), 7, 'spec.clusterIP', 'must be an IPv4 or IPv6 address, or "None" (headless), got "none"'],
  ['a number as clusterIP', svc(SEL, PORT, '  clusterIP: 10'), 7, 'spec.clusterIP', 'expected an IPv4 or IPv6 address, or "None" (headless), got number 10'],
  ['an IPv6 clusterIP that does not parse', svc(SEL, PORT, '  clusterIP: "fd00:10:96::10::1"'), 7, 'spec.clusterIP', 'must be an IPv4 or IPv6 address, or "None" (headless), got "fd00:10:96::10::1"'],
  ['a second cluster IP of the same family', svc(SEL, PORT, '  clusterIPs:', '    - 10.244.240.10', '    - 10.244.240.11'), 9, 'spec.clusterIPs[1]', '10.244.240.11 is IPv4 like clusterIPs[0]: a second cluster IP is of the other family (dual-stack)'],
  ['a third cluster IP', svc(SEL, PORT, '  clusterIPs: [10.244.240.10, "fd00:10:96::a", 10.244.240.11]', '  ipFamilyPolicy: RequireDualStack'), 7, 'spec.clusterIPs[2]', 'at most two cluster IPs (one per family)'],
  ['None beside an address', svc(SEL, PORT, '  clusterIPs: [None, "fd00:10:96::a"]', '  ipFamilyPolicy: RequireDualStack'), 7, 'spec.clusterIPs[0]', 'None (headless) must be the only entry'],
  ['two cluster IPs of a SingleStack service', svc(SEL, PORT, '  clusterIPs: [10.244.240.10, "fd00:10:96::a"]', '  ipFamilyPolicy: SingleStack'), 7, 'spec.clusterIPs', 'a SingleStack service has one cluster IP (use PreferDualStack or RequireDualStack for two)'],
  ['a cluster IP of another family than ipFamilies says', svc(SEL, PORT, '  clusterIPs: ["fd00:10:96::a"]', '  ipFamilies: [IPv4]'), 7, 'spec.clusterIPs[0]', 'fd00:10:96::a is IPv6, but ipFamilies[0] is IPv4'],
  ['clusterIPs[0] other than clusterIP', svc(SEL, PORT, '  clusterIP: 10.244.240.10', '  clusterIPs: [10.244.240.11]'), 8, 'spec.clusterIPs[0]', 'must equal clusterIP (10.244.240.10) when both are given'],
  ['a headless NodePort service', svc(SEL, PORT, NP, '  clusterIP: None'), 8, 'spec.clusterIP', 'None (headless) is only for type ClusterIP, not NodePort'],
  ['a headless LoadBalancer service', svc(SEL, PORT, LB, '  clusterIPs: [None]'), 8, 'spec.clusterIPs[0]', 'None (headless) is only for type ClusterIP, not LoadBalancer'],
  ['a headless service with externalIPs', svc(SEL, '  clusterIP: None', '  externalIPs: [10.250.1.10]'), 7, 'spec.externalIPs', 'a headless service (clusterIP None) is not translated, so it cannot have externalIPs'],
  ['two families of a SingleStack service', svc(SEL, PORT, '  ipFamilies: [IPv4, IPv6]', '  ipFamilyPolicy: SingleStack'), 7, 'spec.ipFamilies', 'a SingleStack service has one IP family (use PreferDualStack or RequireDualStack for two)'],
  ['an unknown IP family', svc(SEL, PORT, '  ipFamilies: [ipv4]'), 7, 'spec.ipFamilies[0]', 'unknown IP family "ipv4" (supported: IPv4, IPv6)'],
  ['a duplicate IP family', svc(SEL, PORT, '  ipFamilies: [IPv4, IPv4]'), 7, 'spec.ipFamilies[1]', 'duplicate IP family IPv4 (also spec.ipFamilies[0])'],
  ['an unknown ipFamilyPolicy', svc(SEL, PORT, '  ipFamilyPolicy: Single'), 7, 'spec.ipFamilyPolicy', 'unknown ipFamilyPolicy "Single" (supported: SingleStack, PreferDualStack, RequireDualStack)'],
  // external IPs
  ['a link-local IPv6 external IP', svc(SEL, PORT, '  externalIPs: ["fe80::1"]'), 7, 'spec.externalIPs[0]', 'fe80::1 is in the link-local range fe80::/10, which cannot be an external IP'],
  ['the IPv6 loopback as external IP', svc(SEL, PORT, '  externalIPs: ["::1"]'), 7, 'spec.externalIPs[0]', '::1 is the loopback address, which cannot be an external IP'],
  ['an external IP that does not parse', svc(SEL, PORT, '  externalIPs: [lb.example.com]'), 7, 'spec.externalIPs[0]', 'must be an IPv4 or IPv6 address, got "lb.example.com"'],
  ['a duplicate external IP', svc(SEL, PORT, '  externalIPs:', '    - 10.250.1.10', '    - 10.250.1.10'), 9, 'spec.externalIPs[1]', 'duplicate external IP 10.250.1.10 (also spec.externalIPs[0])'],
  ['a loopback external IP', svc(SEL, PORT, '  externalIPs: [127.0.0.1]'), 7, 'spec.externalIPs[0]', '127.0.0.1 is in the loopback range 127.0.0.0/8, which cannot be an external IP'],
  ['the unspecified external IP', svc(SEL, PORT, '  externalIPs: [0.0.0.0]'), 7, 'spec.externalIPs[0]', '0.0.0.0 is the unspecified address, which cannot be an external IP'],
  ['a link-local external IP', svc(SEL, PORT, '  externalIPs: [169.254.0.1]'), 7, 'spec.externalIPs[0]', '169.254.0.1 is in the link-local range 169.254.0.0/16, which cannot be an external IP'],
  ['a link-local multicast external IP', svc(SEL, PORT, '  externalIPs: [224.0.0.18]'), 7, 'spec.externalIPs[0]', '224.0.0.18 is in the link-local multicast range 224.0.0.0/24, which cannot be an external IP'],
  // session affinity
  ['an unknown sessionAffinity', svc(SEL, PORT, '  sessionAffinity: clientip'), 7, 'spec.sessionAffinity', 'unknown sessionAffinity "clientip" (supported: None, ClientIP)'],
  ['sessionAffinityConfig without ClientIP', svc(SEL, PORT, '  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}'), 7, 'spec.sessionAffinityConfig', 'only allowed with sessionAffinity ClientIP'],
  ['an affinity timeout of 0', svc(SEL, PORT, '  sessionAffinity: ClientIP', '  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}'), 8, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'must be an integer from 1 to 86400 (seconds), got 0'],
  ['an affinity timeout over a day', svc(SEL, PORT, '  sessionAffinity: ClientIP', '  sessionAffinityConfig:', '    clientIP:', '      timeoutSeconds: 86401'), 10, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'must be an integer from 1 to 86400 (seconds), got 86401'],
  ['an affinity timeout as a duration', svc(SEL, PORT, '  sessionAffinity: ClientIP', '  sessionAffinityConfig: {clientIP: {timeoutSeconds: 3h}}'), 8, 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'must be an integer from 1 to 86400 (seconds), got "3h"'],
  ['an unknown affinity field', svc(SEL, PORT, '  sessionAffinity: ClientIP', '  sessionAffinityConfig:', '    clientIP:', '      timeout: 60'), 10, 'spec.sessionAffinityConfig.clientIP.timeout', 'unknown field'],
  // traffic policies, health check, node port allocation
  ['externalTrafficPolicy on an internal service', svc(SEL, PORT, '  externalTrafficPolicy: Local'), 7, 'spec.externalTrafficPolicy', 'only allowed for services reachable from outside: type NodePort or LoadBalancer, or with externalIPs'],
  ['an unknown externalTrafficPolicy', svc(NP, SEL, PORT, '  externalTrafficPolicy: Global'), 8, 'spec.externalTrafficPolicy', 'unknown externalTrafficPolicy "Global" (supported: Cluster, Local)'],
  ['an unknown internalTrafficPolicy', svc(SEL, PORT, '  internalTrafficPolicy: local'), 7, 'spec.internalTrafficPolicy', 'unknown internalTrafficPolicy "local" (supported: Cluster, Local)'],
  ['healthCheckNodePort on a NodePort service', svc(NP, SEL, PORT, '  externalTrafficPolicy: Local', '  healthCheckNodePort: 32000'), 9, 'spec.healthCheckNodePort', 'only allowed with type LoadBalancer and externalTrafficPolicy Local'],
  ['healthCheckNodePort with externalTrafficPolicy Cluster', svc(LB, SEL, PORT, '  healthCheckNodePort: 32000'), 8, 'spec.healthCheckNodePort', 'only allowed with type LoadBalancer and externalTrafficPolicy Local'],
  ['healthCheckNodePort out of range', svc(LB, SEL, PORT, '  externalTrafficPolicy: Local', '  healthCheckNodePort: 65536'), 9, 'spec.healthCheckNodePort', 'must be an integer from 1 to 65535, got 65536'],
  ['healthCheckNodePort equal to a nodePort', svc(LB, SEL, '  ports: [{port: 80, nodePort: 30080}]', '  externalTrafficPolicy: Local', '  healthCheckNodePort: 30080'), 9, 'spec.healthCheckNodePort', '30080 is also spec.ports[0].nodePort: the health check needs a node port of its own'],
  ['allocateLoadBalancerNodePorts on a NodePort service', svc(NP, SEL, PORT, '  allocateLoadBalancerNodePorts: true'), 8, 'spec.allocateLoadBalancerNodePorts', 'only allowed with type LoadBalancer, not NodePort'],
  ['allocateLoadBalancerNodePorts that is not a boolean', svc(LB, SEL, PORT, '  allocateLoadBalancerNodePorts: "no"'), 8, 'spec.allocateLoadBalancerNodePorts', 'expected true or false, got string "no"'],
  ['publishNotReadyAddresses that is not a boolean', svc(SEL, PORT, '  publishNotReadyAddresses: 1'), 7, 'spec.publishNotReadyAddresses', 'expected true or false, got number 1'],
  // Kubernetes fields refused by name
  ['loadBalancerIP', svc(LB, SEL, PORT, '  loadBalancerIP: 10.250.1.10'), 8, 'spec.loadBalancerIP', 'loadBalancerIP is not supported yet (Kubernetes deprecates it too): tcplane takes load balancer addresses from status.loadBalancer.ingress'],
  ['loadBalancerSourceRanges', svc(LB, SEL, PORT, '  loadBalancerSourceRanges: [10.0.0.0/8]'), 8, 'spec.loadBalancerSourceRanges', 'loadBalancerSourceRanges is not supported yet: tcplane does not filter load balancer clients by source address'],
  ['loadBalancerClass', svc(LB, SEL, PORT, '  loadBalancerClass: example.com/lb'), 8, 'spec.loadBalancerClass', 'loadBalancerClass is not supported yet'],
  ['trafficDistribution', svc(SEL, PORT, '  trafficDistribution: PreferClose'), 7, 'spec.trafficDistribution', 'trafficDistribution is not supported yet: tcplane spreads traffic over every backend its traffic policies allow'],
  ['an unknown spec field', svc(SEL, PORT, '  topologyKeys: ["*"]'), 7, 'spec.topologyKeys', 'unknown field'],
  // status
  ['an ingress hostname', svc(LB, SEL, PORT, ...ingress('hostname: lb.example.com')), 11, 'status.loadBalancer.ingress[0].hostname', "hostname is not supported yet: tcplane needs the load balancer's IP address (ip)"],
  ['ipMode Proxy', svc(LB, SEL, PORT, ...ingress('{ip: 10.250.1.20, ipMode: Proxy}')), 11, 'status.loadBalancer.ingress[0].ipMode', 'ipMode Proxy is not supported yet (tcplane handles load balancer IPs as VIP)'],
  ['an unknown ipMode', svc(LB, SEL, PORT, ...ingress('{ip: 10.250.1.20, ipMode: vip}')), 11, 'status.loadBalancer.ingress[0].ipMode', 'unknown ipMode "vip" (supported: VIP)'],
  ['ingress ports', svc(LB, SEL, PORT, ...ingress('{ip: 10.250.1.20, ports: [{port: 80, protocol: TCP}]}')), 11, 'status.loadBalancer.ingress[0].ports', 'ports of a load balancer ingress are not supported yet'],
  ['an ingress IP that does not parse', svc(LB, SEL, PORT, ...ingress('ip: "fd00:10:251::20::"')), 11, 'status.loadBalancer.ingress[0].ip', 'must be an IPv4 or IPv6 address, got "fd00:10:251::20::"'],
  ['an ingress entry without ip', svc(LB, SEL, PORT, ...ingress('{}')), 11, 'status.loadBalancer.ingress[0].ip', "required (the load balancer's IP address)"],
  ['a duplicate ingress IP', svc(LB, SEL, PORT, ...ingress('ip: 10.250.1.20', 'ip: 10.250.1.20')), 12, 'status.loadBalancer.ingress[1].ip', 'duplicate load balancer IP 10.250.1.20 (also status.loadBalancer.ingress[0])'],
  ['ingress on a ClusterIP service', svc(SEL, PORT, ...ingress('ip: 10.250.1.20')), 9, 'status.loadBalancer.ingress', 'only a LoadBalancer service has load balancer ingress (spec.type is ClusterIP)'],
  ['another status field', svc(SEL, PORT, 'status:', '  conditions: []'), 8, 'status.conditions', 'unknown field'],
  ['an unknown loadBalancer status field', svc(LB, SEL, PORT, 'status:', '  loadBalancer: {vip: 10.250.1.20}'), 9, 'status.loadBalancer.vip', 'unknown field'],
];

describe('service parse - errors', () => {
  it.each(ERRORS)('service parse - %s is a located error', (_, text, line, field, detail) => {
    expect(onlyError(text)).toEqual({ line, field, detail });
  });

  it('service parse - the message reads FILE:LINE: field: detail', () => {
    expect(errorsOf(svc(SEL, '  ports: [{port: 0}]'))[0].message).toBe(
      `${FILE}:6: spec.ports[0].port: must be an integer from 1 to 65535, got 0`,
    );
  });

  it('service parse - malformed YAML is a located error', () => {
    const errors = errorsOf(svc(SEL, '  ports: [{port: 80}', '  type: NodePort'));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0].detail).toMatch(/^YAML: /);
    expect(errors[0].line).toBeGreaterThanOrEqual(6);
  });

  it('service parse - a duplicate namespace/name is an error at the second document', () => {
    const text = svc(SEL, PORT) + '---\n' + svc(SEL, PORT).replace('{name: web}', '{name: web, namespace: default}');
    expect(onlyError(text)).toEqual({ line: 10, field: 'metadata.name', detail: 'duplicate Service default/web (first defined at line 1)' });
  });

  it('service parse - every error of every document is reported, sorted by line, and nothing is returned', () => {
    const text = lines(
      'apiVersion: v1', // 1
      'kind: Service',
      'metadata: {name: a}',
      'spec:',
      '  selector: {app: a}', // 5
      '  clusterIP: "fd00::1::2"', // 6: checked after the ports, reported before them
      '  ports:',
      '    - {name: x, port: 0}', // 8
      '    - {port: 81, protocol: udp}', // 9
      '---',
      'kind: Pod', // 11
      '---',
      'apiVersion: v1', // 13
      'kind: Service',
      'metadata: {name: b}',
      'spec:', // 16: no selector
      '  type: NodePort',
      '  ports: [{port: 80, nodePort: 30080}, {port: 80, nodePort: 30081}]', // 18: the rules across ports still run
      '  loadBalancerIP: 10.0.0.1', // 19
      '---',
      'apiVersion: v1', // 21
      'kind: Service',
      'metadata: {name: ok}',
      'spec: {selector: {app: ok}, ports: [{port: 80}]}',
    );
    const errors = errorsOf(text);
    expect(errors.map((e) => `${e.line} ${e.field}: ${e.detail}`)).toEqual([
      '6 spec.clusterIP: must be an IPv4 or IPv6 address, or "None" (headless), got "fd00::1::2"',
      '8 spec.ports[0].port: must be an integer from 1 to 65535, got 0',
      '9 spec.ports[1].protocol: unknown protocol "udp" (supported: TCP, UDP, SCTP)',
      '11 kind: expected Service, got "Pod" (only Service documents are read here)',
      `16 spec.selector: required: ${NO_SELECTOR}`,
      '18 spec.ports[0].name: required when a service has more than one port',
      '18 spec.ports[1].name: required when a service has more than one port',
      '18 spec.ports[1]: duplicate port 80/TCP (also spec.ports[0])',
      '19 spec.loadBalancerIP: loadBalancerIP is not supported yet (Kubernetes deprecates it too): tcplane takes load balancer addresses from status.loadBalancer.ingress',
    ]);
    for (const e of errors) expect(e.file).toBe(FILE);
  });
});

// ---- the store schema ----

describe('service schema', () => {
  it.each(VALID)('service schema - a parsed service round-trips through JSON and serviceSchema: %s', (_, text) => {
    const [parsed] = parseServiceText(text, FILE);
    const r = serviceSchema.safeParse(JSON.parse(JSON.stringify(parsed)));
    expect(r.error?.issues ?? []).toEqual([]);
    expect(r.data).toStrictEqual(parsed);
  });

  const good = service({ clusterIPs: ['10.244.240.10'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' });
  const port = good.ports[0];
  it.each<[string, Record<string, unknown>, (string | number)[], string | RegExp]>([
    ['a cluster IP that does not parse', { clusterIPs: ['10.244.240.256'] }, ['clusterIPs', 0], 'not an IP address'],
    ['a cluster IP of another family than ipFamilies', { clusterIPs: ['fd00:10:96::10'], ipFamilies: ['IPv4'] }, ['clusterIPs', 0], 'fd00:10:96::10 is not IPv4 (ipFamilies[0])'],
    ['three cluster IPs', { clusterIPs: ['10.244.240.10', 'fd00:10:96::a', '10.244.240.11'] }, ['clusterIPs'], 'at most one cluster IP per family'],
    ['two families of a SingleStack service', { clusterIPs: [], ipFamilies: ['IPv4', 'IPv6'] }, ['ipFamilies'], 'a SingleStack service has one family'],
    ['an external IP that does not parse', { externalIPs: ['10.250.1'] }, ['externalIPs', 0], 'not an IP address'],
    ['an unknown field', { loadBalancerIP: '10.250.1.10' }, [], /loadBalancerIP/],
    ['a port out of range', { ports: [{ ...port, port: 0 }] }, ['ports', 0, 'port'], />=1/],
    ['an unknown port field', { ports: [{ ...port, hostPort: 80 }] }, ['ports', 0], /hostPort/],
    ['a bad targetPort name', { ports: [{ ...port, targetPort: 'web--api' }] }, ['ports', 0, 'targetPort'], /without "--"/],
    ['an unknown family', { ipFamilies: ['IPv5'] }, ['ipFamilies', 0], /IPv4/],
    ['an empty selector', { selector: {} }, ['selector'], 'a service needs a non-empty selector'],
    ['a bad name', { name: '1web' }, ['name'], /DNS-1035/],
    ['a headless NodePort service', { type: 'NodePort', clusterIPs: ['None'] }, ['clusterIPs', 0], 'a headless service must be of type ClusterIP'],
    ['no ports on a translated service', { ports: [] }, ['ports'], 'only a headless service may have no ports'],
    ['an SCTP port rewrite', { ports: [{ protocol: 'SCTP', port: 2905, targetPort: 2906 }] }, ['ports', 0, 'targetPort'], 'an SCTP port cannot be rewritten'],
    ['an SCTP node port', { type: 'NodePort', ports: [{ protocol: 'SCTP', port: 2905, targetPort: 2905, nodePort: 30905 }] }, ['ports', 0, 'nodePort'], 'an SCTP port cannot have a node port (it cannot be rewritten)'],
    ['a nodePort on a ClusterIP service', { ports: [{ ...port, nodePort: 30080 }] }, ['ports', 0, 'nodePort'], 'a ClusterIP service has no node ports'],
    ['a duplicate port', { ports: [port, port] }, ['ports', 1], 'duplicate port 80/TCP'],
    ['an affinity timeout without affinity', { sessionAffinityTimeoutSeconds: 60 }, ['sessionAffinityTimeoutSeconds'], /must be 0/],
    ['ClientIP without a timeout', { sessionAffinity: 'ClientIP' }, ['sessionAffinityTimeoutSeconds'], /1 or more/],
    ['a health check port without Local', { type: 'LoadBalancer', healthCheckNodePort: 32000 }, ['healthCheckNodePort'], /externalTrafficPolicy Local/],
    ['ingress on a ClusterIP service', { loadBalancerIngress: ['10.250.1.20'] }, ['loadBalancerIngress'], /only a LoadBalancer/],
    ['a missing field', { publishNotReadyAddresses: undefined }, ['publishNotReadyAddresses'], /boolean/],
  ])('service schema - refuses %s', (_, change, path, message) => {
    expect(serviceSchema.safeParse(good).success).toBe(true);
    const r = serviceSchema.safeParse({ ...good, ...change });
    expect(r.success).toBe(false);
    const issue = r.error!.issues[0];
    expect(issue.path).toEqual(path);
    if (typeof message === 'string') expect(issue.message).toBe(message);
    else expect(issue.message).toMatch(message);
  });
});
