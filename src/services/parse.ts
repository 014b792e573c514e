/**
 * Kubernetes `v1` Service documents → the normalized model (types.ts), with the defaults
 * and the validation rules of the Kubernetes API server. Each document is checked with a
 * strict zod schema, so a misspelt field is an error, never a frontend silently missing.
 * Fields Kubernetes defines that tcplane cannot honour yet (ExternalName, load balancer
 * source ranges and classes, traffic distribution, …) are
 * rejected by name as "not supported yet".
 *
 * Errors read `FILE:LINE: field.path: detail`, placed on the line of the field's key.
 * Every field is checked on its own; a rule that relates several fields (a nodePort needs
 * type NodePort or LoadBalancer, …) runs once the part of the document it reads (the port
 * list, the spec) is well-formed, since it cannot judge values that did not parse.
 */
import { isIPv6 } from 'node:net';
import { canonicalIP } from '../datapath/addr.js';
import { z } from 'zod';
import {
  LocatedErrors,
  formatPath,
  parseYamlDocuments,
  zodIssuesToErrors,
  type FieldPath,
  type LocatedDoc,
  type LocatedError,
} from '../yaml/located.js';
import { validateDns1035Label, validateDns1123Label, validateIanaServiceName, validateLabelKey } from '../yaml/names.js';
import {
  Reject,
  apiVersionSchema,
  atKeys,
  checked,
  describeIssue,
  isPlainObject,
  labelMap,
  metadataSchema,
  notSupportedYet,
  typeOf,
} from '../yaml/schema-helpers.js';
import { ServiceError } from './errors.js';
import { familyOfAddress } from './schema.js';
import {
  DEFAULT_AFFINITY_TIMEOUT_SECONDS,
  MAX_AFFINITY_TIMEOUT_SECONDS,
  type IPFamily,
  type IPFamilyPolicy,
  type Service,
  type ServicePort,
  type ServiceType,
} from './types.js';

const API = 'v1';
/** tcplane rewrites ports incrementally; SCTP's checksum is a CRC32c over the whole packet. */
const SCTP_TARGET_PORT =
  'SCTP ports need targetPort equal to port: tcplane cannot rewrite an SCTP port (its CRC32c checksum has no BPF helper)';
/** A node port is another port than targetPort by construction (30000–32767), so the same holds. */
const SCTP_NODE_PORT =
  'SCTP ports cannot have a node port: traffic to it would need its port rewritten to targetPort, which tcplane cannot do for SCTP (its CRC32c checksum has no BPF helper); use type ClusterIP, externalIPs, or a LoadBalancer with allocateLoadBalancerNodePorts: false';
const NO_SELECTOR =
  'a Service without a selector takes its endpoints from EndpointSlices managed elsewhere, which tcplane does not support yet';

/**
 * Parses and validates every document of a file of Service documents (other kinds are an
 * error; mixed files go through the kind dispatcher instead). Empty documents are skipped.
 * @param file names the input in error messages and in each service's `source`.
 * @throws LocatedErrors holding every ServiceError, sorted by line; a file with any error yields nothing.
 */
export function parseServiceText(text: string, file: string): Service[] {
  const { docs, errors: yamlErrors } = parseYamlDocuments(text, file);
  const errors: LocatedError[] = yamlErrors.map((e) => new ServiceError(e.file, e.line, e.field, e.detail));
  const out: Service[] = [];
  const seen = new Map<string, number>();
  for (const doc of docs) {
    const svc = parseServiceDocument(doc, file, errors);
    if (!svc) continue;
    const key = `${svc.namespace}/${svc.name}`;
    const first = seen.get(key);
    if (first !== undefined) {
      const line = doc.keyLineOf(['metadata', 'name']);
      errors.push(new ServiceError(file, line, 'metadata.name', `duplicate Service ${key} (first defined at line ${first})`));
      continue;
    }
    seen.set(key, svc.source.line);
    out.push(svc);
  }
  if (errors.length > 0) {
    errors.sort((a, b) => a.line - b.line); // stable: same-line errors keep document order
    throw new LocatedErrors(errors);
  }
  return out;
}

/**
 * One YAML document whose kind is Service (the caller dispatches on kind) → the
 * normalized Service, defaults applied. Problems are appended to `errors` as
 * ServiceErrors; the result is undefined when there is any.
 */
export function parseServiceDocument(doc: LocatedDoc, file: string, errors: LocatedError[]): Service | undefined {
  const fail = (path: FieldPath, detail: string) =>
    void errors.push(new ServiceError(file, doc.lineOf(path), formatPath(path), detail));
  const value = doc.value;
  if (!isPlainObject(value)) {
    fail([], `a document must be a mapping with apiVersion, kind, metadata and spec, got ${typeOf(value)}`);
    return undefined;
  }
  if (value.kind !== 'Service') {
    if (value.kind == null) fail(['kind'], 'required (Service)');
    else fail(['kind'], `expected Service, got ${JSON.stringify(value.kind)} (only Service documents are read here)`);
    return undefined;
  }
  const parsed = serviceDocumentSchema.safeParse(value, { error: describeIssue });
  if (!parsed.success) {
    errors.push(...zodIssuesToErrors(parsed.error.issues, atKeys(doc), file, (...a) => new ServiceError(...a)));
    return undefined;
  }
  return normalize(parsed.data, { file, line: doc.line });
}

// ---- normalization (input already validated) ----

type DocumentIn = z.output<typeof serviceDocumentSchema>;
type SpecIn = DocumentIn['spec'];

/** `clusterIP` and `clusterIPs` merged: they agree when both are given (checked). */
function clusterIPsOf(spec: Pick<SpecIn, 'clusterIP' | 'clusterIPs'>): string[] {
  if (spec.clusterIPs && spec.clusterIPs.length > 0) return spec.clusterIPs;
  return spec.clusterIP ? [spec.clusterIP] : [];
}

/**
 * The families as given, then those read from given cluster IPs beyond them (as
 * Kubernetes infers them); [] leaves them to `apply` (the cluster's families decide).
 */
function ipFamiliesOf(spec: Pick<SpecIn, 'clusterIP' | 'clusterIPs' | 'ipFamilies'>): IPFamily[] {
  const given = spec.ipFamilies ?? [];
  const fromIPs = clusterIPsOf(spec)
    .filter((ip) => ip !== 'None')
    .map(familyOfAddress);
  return [...given, ...fromIPs.slice(given.length)];
}

/**
 * As given; unset, RequireDualStack when two families or two cluster IPs are given (as
 * Kubernetes defaults it), else undefined: `apply` adopts the stored service's policy on
 * an update and takes SingleStack on a create.
 */
function ipFamilyPolicyOf(spec: Pick<SpecIn, 'clusterIP' | 'clusterIPs' | 'ipFamilies' | 'ipFamilyPolicy'>): IPFamilyPolicy | undefined {
  if (spec.ipFamilyPolicy !== undefined) return spec.ipFamilyPolicy;
  return (spec.ipFamilies?.length ?? 0) > 1 || clusterIPsOf(spec).length > 1 ? 'RequireDualStack' : undefined;
}

function normalize(d: DocumentIn, source: Service['source']): Service {
  const { metadata, spec } = d;
  const ports = (spec.ports ?? []).map(
    (p): ServicePort => ({
      ...(p.name !== undefined && { name: p.name }),
      protocol: p.protocol,
      port: p.port,
      targetPort: p.targetPort ?? p.port,
      ...(p.nodePort !== undefined && { nodePort: p.nodePort }),
    }),
  );
  const affinity = spec.sessionAffinity;
  return {
    kind: 'Service',
    apiVersion: API,
    namespace: metadata.namespace ?? 'default',
    name: metadata.name,
    type: spec.type,
    selector: spec.selector,
    clusterIPs: clusterIPsOf(spec),
    ipFamilies: ipFamiliesOf(spec),
    ...(ipFamilyPolicyOf(spec) !== undefined && { ipFamilyPolicy: ipFamilyPolicyOf(spec) }),
    ports,
    externalIPs: spec.externalIPs ?? [],
    loadBalancerIngress: (d.status?.loadBalancer?.ingress ?? []).map((i) => i.ip!),
    sessionAffinity: affinity,
    sessionAffinityTimeoutSeconds:
      affinity === 'ClientIP' ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS) : 0,
    // Kubernetes leaves it unset where no external traffic can arrive (a ClusterIP
    // service without externalIPs); Cluster says the same there and keeps the field total.
    externalTrafficPolicy: spec.externalTrafficPolicy ?? 'Cluster',
    internalTrafficPolicy: spec.internalTrafficPolicy ?? 'Cluster',
    ...(spec.healthCheckNodePort !== undefined && { healthCheckNodePort: spec.healthCheckNodePort }),
    // Only a LoadBalancer service may set it; elsewhere the default (true) means nothing.
    allocateLoadBalancerNodePorts: spec.allocateLoadBalancerNodePorts ?? true,
    publishNotReadyAddresses: spec.publishNotReadyAddresses ?? false,
    source,
  };
}

// ---- field checks ----

const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
const TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;

/** One of `allowed`; null/absent is `dflt`; a value in `later` gets its not-supported-yet message. */
function oneOf<T extends string, D extends T | undefined>(
  what: string,
  allowed: readonly T[],
  dflt: D,
  later: Record<string, string> = {},
) {
  return checked((v): T | D | Reject => {
    if (v == null) return dflt;
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
    if (typeof v === 'string' && Object.hasOwn(later, v)) return new Reject(later[v]);
    const got = typeof v === 'string' ? JSON.stringify(v) : typeOf(v);
    return new Reject(`unknown ${what} ${got} (supported: ${allowed.join(', ')})`);
  });
}

/** A port number 1–65535. `zeroIsUnset`: Kubernetes reads 0 as "not given" (allocate, or default). */
function portNumber(v: unknown, zeroIsUnset: boolean): number | undefined | Reject {
  if (v == null || (zeroIsUnset && v === 0)) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    return new Reject(`must be an integer from 1 to 65535, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** An IPv4 or IPv6 address, in its canonical text (IPv6 shortest form). */
function ipAddress(v: unknown, orNone = false): string | Reject {
  const allowed = orNone ? 'an IPv4 or IPv6 address, or "None" (headless)' : 'an IPv4 or IPv6 address';
  if (typeof v !== 'string') return new Reject(`expected ${allowed}, got ${typeOf(v)}`);
  const c = canonicalIP(v);
  if (c !== undefined) return c;
  const hint = /^\d+\.\d+\.\d+\.\d+$/.test(v) ? ' (each part 0 to 255, without leading zeros)' : '';
  return new Reject(`must be ${allowed}, got ${JSON.stringify(v)}${hint}`);
}

/** clusterIP and each clusterIPs entry: "None" (headless) or an address. */
const clusterIPEntry = (v: unknown) => (v === 'None' ? ('None' as const) : ipAddress(v, true));

/** Addresses no frontend may use (Kubernetes refuses them as external IPs too). */
function specialAddress(ip: string): string | undefined {
  if (isIPv6(ip)) {
    const head = parseInt(ip.split(':')[0] || '0', 16);
    if (ip === '::') return 'the unspecified address';
    if (ip === '::1') return 'the loopback address';
    if ((head & 0xffc0) === 0xfe80) return 'in the link-local range fe80::/10';
    if ((head & 0xff0f) === 0xff02) return 'a link-local multicast address (ff02::/16)';
    return undefined;
  }
  const [a, b, c] = ip.split('.').map(Number);
  if (ip === '0.0.0.0') return 'the unspecified address';
  if (a === 127) return 'in the loopback range 127.0.0.0/8';
  if (a === 169 && b === 254) return 'in the link-local range 169.254.0.0/16';
  if (a === 224 && b === 0 && c === 0) return 'in the link-local multicast range 224.0.0.0/24';
  return undefined;
}

/** A list (at `field`) whose entries, `what`s, must differ. */
function uniqueList<T extends z.ZodType>(entry: T, what: string, field: string) {
  return z.array(entry).superRefine((list, ctx) => {
    const first = new Map<unknown, number>();
    list.forEach((v, i) => {
      const j = first.get(v);
      if (j === undefined) first.set(v, i);
      else ctx.addIssue({ code: 'custom', path: [i], message: `duplicate ${what} ${String(v)} (also ${field}[${j}])` });
    });
  });
}

const optionalBoolean = (v: unknown) =>
  v == null || typeof v === 'boolean' ? (v ?? undefined) : new Reject(`expected true or false, got ${typeOf(v)}`);

/** Kubernetes reads "" and [] as unset in these fields. */
const unsetOrEmpty = (v: unknown) => v == null || v === '';
const unsetOrNoItems = (v: unknown) => v == null || (Array.isArray(v) && v.length === 0);

const portName = checked((v) => {
  if (v == null || v === '') return undefined; // Kubernetes: "" is an unnamed port
  if (typeof v !== 'string') return new Reject(`expected a string, got ${typeOf(v)}`);
  // Kubernetes checks service port names as DNS-1123 labels (only container port names,
  // which targetPort refers to, are IANA service names).
  const bad = validateDns1123Label(v);
  return bad ? new Reject(bad) : v;
});

const targetPort = checked((v): number | string | undefined | Reject => {
  if (v === '') return undefined; // Kubernetes defaults 0 and "" to port, as it does absent
  if (typeof v === 'string') {
    const bad = validateIanaServiceName(v);
    if (!bad) return v;
    const hint = /^\d+$/.test(v) ? ` (a port number is written unquoted: ${v})` : '';
    return new Reject(`a named targetPort is an IANA service name: ${bad}${hint}`);
  }
  return portNumber(v, true);
});

const appProtocol = checked((v) => {
  if (v == null) return undefined;
  if (typeof v !== 'string') return new Reject(`expected a string, got ${typeOf(v)}`);
  const bad = validateLabelKey(v);
  return bad ? new Reject(`must be a qualified name like http or kubernetes.io/h2c: ${bad}`) : v;
});

const portSchema = z.strictObject({
  name: portName,
  protocol: oneOf('protocol', PROTOCOLS, 'TCP'),
  port: checked((v) => (v == null ? new Reject('required') : portNumber(v, false)!)),
  targetPort,
  nodePort: checked((v) => portNumber(v, true)),
  // A hint for proxies and meshes (http, kubernetes.io/h2c, …); the datapath has no use
  // for it, so it is checked and dropped.
  appProtocol,
});
type PortIn = z.output<typeof portSchema>;

/** Names required and unique when there are several ports; (port, protocol) and (nodePort, protocol) unique. */
function checkPorts(ports: PortIn[], ctx: z.RefinementCtx) {
  const fail = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const names = new Map<string, number>();
  const frontends = new Map<string, number>();
  const nodePorts = new Map<string, number>();
  ports.forEach((p, i) => {
    if (p.name === undefined) {
      if (ports.length > 1) fail([i, 'name'], 'required when a service has more than one port');
    } else if (names.has(p.name)) {
      fail([i, 'name'], `duplicate port name ${JSON.stringify(p.name)} (also spec.ports[${names.get(p.name)}])`);
    } else {
      names.set(p.name, i);
    }
    const key = `${p.port}/${p.protocol}`;
    if (frontends.has(key)) {
      fail([i], `duplicate port ${key} (also spec.ports[${frontends.get(key)}])`);
    } else {
      frontends.set(key, i);
    }
    if (p.nodePort === undefined) return;
    const nodeKey = `${p.nodePort}/${p.protocol}`;
    if (nodePorts.has(nodeKey)) {
      fail([i, 'nodePort'], `duplicate nodePort ${nodeKey} (also spec.ports[${nodePorts.get(nodeKey)}])`);
    } else {
      nodePorts.set(nodeKey, i);
    }
  });
}

const externalIP = checked((v) => {
  const ip = ipAddress(v);
  if (ip instanceof Reject) return ip;
  const special = specialAddress(ip);
  return special ? new Reject(`${ip} is ${special}, which cannot be an external IP`) : ip;
});

const ipFamily = checked((v) => {
  if (v === 'IPv4' || v === 'IPv6') return v;
  return new Reject(`unknown IP family ${typeof v === 'string' ? JSON.stringify(v) : typeOf(v)} (supported: IPv4, IPv6)`);
});

/** At most two, of different families; None alone. */
const clusterIPsSchema = z.array(checked(clusterIPEntry)).superRefine((ips, ctx) => {
  const fail = (i: number, message: string) => ctx.addIssue({ code: 'custom', path: [i], message });
  ips.forEach((ip, i) => {
    if (i >= 2) fail(i, 'at most two cluster IPs (one per family)');
    else if (ip === 'None' && ips.length > 1) fail(i, 'None (headless) must be the only entry');
    else if (i === 1 && ips[0] !== 'None' && ip !== 'None' && familyOfAddress(ip) === familyOfAddress(ips[0]!)) {
      fail(i, `${ip} is ${familyOfAddress(ip)} like clusterIPs[0]: a second cluster IP is of the other family (dual-stack)`);
    }
  });
});

const specSchema = z
  .strictObject({
    type: oneOf('type', TYPES, 'ClusterIP', {
      ExternalName: 'type ExternalName is not supported yet (supported: ClusterIP, NodePort, LoadBalancer)',
    }),
    // Kubernetes also treats an empty selector as none (see the API reference).
    selector: labelMap.nullish().transform((s, ctx) => {
      if (s != null && Object.keys(s).length > 0) return s;
      const message = s == null ? `required: ${NO_SELECTOR}` : `an empty selector is no selector to Kubernetes: ${NO_SELECTOR}`;
      ctx.addIssue({ code: 'custom', message });
      return z.NEVER;
    }),
    ports: z.array(portSchema).superRefine(checkPorts).nullish(),
    clusterIP: checked((v) => (v == null || v === '' ? undefined : clusterIPEntry(v))),
    clusterIPs: clusterIPsSchema.nullish(),
    ipFamilies: uniqueList(ipFamily, 'IP family', 'spec.ipFamilies')
      .refine((l) => l.length <= 2, 'at most two IP families')
      .nullish(),
    // Whether the cluster can give what it asks is checked by `apply`, which knows the cluster's families.
    ipFamilyPolicy: oneOf('ipFamilyPolicy', ['SingleStack', 'PreferDualStack', 'RequireDualStack'] as const, undefined),
    externalIPs: uniqueList(externalIP, 'external IP', 'spec.externalIPs').nullish(),
    sessionAffinity: oneOf('sessionAffinity', ['None', 'ClientIP'] as const, 'None'),
    sessionAffinityConfig: z
      .strictObject({
        clientIP: z
          .strictObject({
            timeoutSeconds: checked((v) => {
              if (v == null) return undefined;
              if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_AFFINITY_TIMEOUT_SECONDS) return v;
              return new Reject(`must be an integer from 1 to ${MAX_AFFINITY_TIMEOUT_SECONDS} (seconds), got ${JSON.stringify(v)}`);
            }),
          })
          .nullish(),
      })
      .nullish(),
    externalTrafficPolicy: oneOf('externalTrafficPolicy', ['Cluster', 'Local'] as const, undefined),
    internalTrafficPolicy: oneOf('internalTrafficPolicy', ['Cluster', 'Local'] as const, 'Cluster'),
    healthCheckNodePort: checked((v) => portNumber(v, true)),
    allocateLoadBalancerNodePorts: checked(optionalBoolean),
    publishNotReadyAddresses: checked(optionalBoolean),
    // Kubernetes fields tcplane does not honour yet: refused by name, never ignored.
    loadBalancerIP: notSupportedYet(
      'loadBalancerIP is not supported yet (Kubernetes deprecates it too): ' +
        'tcplane takes load balancer addresses from status.loadBalancer.ingress',
      unsetOrEmpty,
    ),
    loadBalancerSourceRanges: notSupportedYet(
      'loadBalancerSourceRanges is not supported yet: tcplane does not filter load balancer clients by source address',
      unsetOrNoItems,
    ),
    loadBalancerClass: notSupportedYet('loadBalancerClass is not supported yet'),
    externalName: notSupportedYet('externalName is not supported yet (it belongs to type ExternalName)', unsetOrEmpty),
    trafficDistribution: notSupportedYet(
      'trafficDistribution is not supported yet: tcplane spreads traffic over every backend its traffic policies allow',
    ),
  })
  .superRefine((spec, ctx) => {
    const fail = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const type: ServiceType = spec.type;
    const ports = spec.ports ?? [];
    const externalIPs = spec.externalIPs ?? [];
    const listed = spec.clusterIPs ?? [];
    if (spec.clusterIP !== undefined && listed.length > 0 && listed[0] !== spec.clusterIP) {
      fail(['clusterIPs', 0], `must equal clusterIP (${spec.clusterIP}) when both are given`);
    }
    const headless = (spec.clusterIP ?? listed[0]) === 'None';
    const families = spec.ipFamilies ?? [];
    const ips = clusterIPsOf(spec);
    if (spec.ipFamilyPolicy === 'SingleStack') {
      if (families.length > 1) fail(['ipFamilies'], 'a SingleStack service has one IP family (use PreferDualStack or RequireDualStack for two)');
      else if (ips.length > 1) fail(['clusterIPs'], 'a SingleStack service has one cluster IP (use PreferDualStack or RequireDualStack for two)');
    }
    if (!headless) {
      ips.forEach((ip, i) => {
        const want = families[i];
        if (want !== undefined && familyOfAddress(ip) !== want) {
          fail(listed.length > 0 ? ['clusterIPs', i] : ['clusterIP'], `${ip} is ${familyOfAddress(ip)}, but ipFamilies[${i}] is ${want}`);
        }
      });
    }
    if (headless && type !== 'ClusterIP') {
      fail(spec.clusterIP === 'None' ? ['clusterIP'] : ['clusterIPs', 0], `None (headless) is only for type ClusterIP, not ${type}`);
    }
    if (ports.length === 0 && !headless) {
      fail(['ports'], 'at least one port is required (only a headless service, clusterIP None, may have none)');
    }
    // kube-proxy does nothing for a headless service; neither would tcplane for its externalIPs.
    if (headless && externalIPs.length > 0) {
      fail(['externalIPs'], 'a headless service (clusterIP None) is not translated, so it cannot have externalIPs');
    }
    ports.forEach((p, i) => {
      if (p.nodePort !== undefined && type === 'ClusterIP') {
        fail(['ports', i, 'nodePort'], 'only allowed with type NodePort or LoadBalancer, not ClusterIP');
      }
      // A headless service is never translated, so its targetPort needs no rewrite.
      if (!headless && p.protocol === 'SCTP' && p.targetPort !== undefined && p.targetPort !== p.port) {
        fail(['ports', i, 'targetPort'], SCTP_TARGET_PORT);
      }
      const nodePort = type === 'NodePort' || (type === 'LoadBalancer' && (spec.allocateLoadBalancerNodePorts !== false || !!p.nodePort));
      if (p.protocol === 'SCTP' && nodePort) fail(['ports', i, 'protocol'], SCTP_NODE_PORT);
    });
    if (spec.sessionAffinity === 'None' && spec.sessionAffinityConfig != null) {
      fail(['sessionAffinityConfig'], 'only allowed with sessionAffinity ClientIP');
    }
    // Kubernetes: only traffic from outside the cluster has an externalTrafficPolicy.
    const external = type !== 'ClusterIP' || externalIPs.length > 0;
    if (spec.externalTrafficPolicy !== undefined && !external) {
      const allowed = 'type NodePort or LoadBalancer, or with externalIPs';
      fail(['externalTrafficPolicy'], `only allowed for services reachable from outside: ${allowed}`);
    }
    const hc = spec.healthCheckNodePort;
    if (hc !== undefined) {
      if (type !== 'LoadBalancer' || spec.externalTrafficPolicy !== 'Local') {
        fail(['healthCheckNodePort'], 'only allowed with type LoadBalancer and externalTrafficPolicy Local');
      } else {
        const i = ports.findIndex((p) => p.nodePort === hc);
        if (i >= 0) fail(['healthCheckNodePort'], `${hc} is also spec.ports[${i}].nodePort: the health check needs a node port of its own`);
      }
    }
    if (spec.allocateLoadBalancerNodePorts !== undefined && type !== 'LoadBalancer') {
      fail(['allocateLoadBalancerNodePorts'], `only allowed with type LoadBalancer, not ${type}`);
    }
  });

const ingressSchema = z
  .strictObject({
    ip: checked((v) => (v == null || v === '' ? undefined : ipAddress(v))),
    hostname: notSupportedYet("hostname is not supported yet: tcplane needs the load balancer's IP address (ip)", unsetOrEmpty),
    // VIP: the node captures traffic to the address, as for an external IP. Proxy: the
    // load balancer forwards to the nodes itself and the address must not be captured.
    ipMode: oneOf('ipMode', ['VIP'] as const, 'VIP', {
      Proxy: 'ipMode Proxy is not supported yet (tcplane handles load balancer IPs as VIP)',
    }),
    ports: notSupportedYet('ports of a load balancer ingress are not supported yet', unsetOrNoItems),
  })
  .superRefine((ing, ctx) => {
    if (ing.ip === undefined) ctx.addIssue({ code: 'custom', path: ['ip'], message: "required (the load balancer's IP address)" });
  });

const statusSchema = z.strictObject({
  loadBalancer: z
    .strictObject({
      ingress: z
        .array(ingressSchema)
        .superRefine((list, ctx) => {
          const first = new Map<string, number>();
          list.forEach((ing, i) => {
            const j = first.get(ing.ip!);
            if (j === undefined) first.set(ing.ip!, i);
            else {
              const message = `duplicate load balancer IP ${ing.ip} (also status.loadBalancer.ingress[${j}])`;
              ctx.addIssue({ code: 'custom', path: [i, 'ip'], message });
            }
          });
        })
        .nullish(),
    })
    .nullish(),
});

const serviceDocumentSchema = z
  .strictObject({
    apiVersion: apiVersionSchema(API, 'Service'),
    kind: z.literal('Service'),
    metadata: metadataSchema(validateDns1035Label),
    spec: specSchema,
    // What `kubectl get -o yaml` shows of a LoadBalancer service: its ingress addresses.
    status: statusSchema.nullish(),
  })
  .superRefine((d, ctx) => {
    const ingress = d.status?.loadBalancer?.ingress ?? [];
    if (ingress.length > 0 && d.spec.type !== 'LoadBalancer') {
      ctx.addIssue({
        code: 'custom',
        path: ['status', 'loadBalancer', 'ingress'],
        message: `only a LoadBalancer service has load balancer ingress (spec.type is ${d.spec.type})`,
      });
    }
  });
