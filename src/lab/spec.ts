/**
 * LAB.yaml → a LabPlan: every name, address and interface the lab will create, decided
 * before anything is touched (deterministic, no root needed, unit-tested).
 *
 * ```yaml
 * nodes: [n1, {name: n2, podCIDR: 10.244.2.0/24, labels: {zone: b}}, n3]
 * namespaces: [{name: x, labels: {ns: x}}]
 * pods:
 *   - {name: a, namespace: x, node: n1, labels: {pod: a}, ip: 10.244.1.10,
 *      ports: [{name: serve-80-tcp, port: 80, protocol: TCP}]}
 * clients: [outside]                  # or {name: outside}: hosts outside the cluster
 * services:                           # Service documents, applied once the lab is up
 *   - {apiVersion: v1, kind: Service, metadata: {name: web, namespace: x}, spec: {...}}
 * serviceCIDR: 10.96.0.0/16            # optional: the ClusterIP range (default 10.244.240.0/20)
 * ```
 *
 * Every error names file, line and field (`LocatedErrors` of `LabSpecError`; all shape
 * errors at once, then all cross-field errors at once): unknown fields, bad names and labels, duplicates, a pod on an
 * unknown node or namespace, a podCIDR outside 10.244.0.0/16 or overlapping another, a
 * pod IP outside its node's podCIDR or taken twice, a port out of range, a client named
 * twice or like a node, more clients than the underlay has addresses for, a service
 * that is no valid Service (checked by the same parser as `apply`) or names a namespace
 * the lab does not declare, a serviceCIDR that does not parse, is larger than /12 or smaller
 * than /28, or overlaps a node's pods, the underlay or the external range. Node pod ranges
 * never overlap the service range (SERVICE_CIDR unless the spec gives `serviceCIDR`: a lab
 * that needs more than the default's 4,094 ClusterIPs, e.g. a benchmark of 10,000 services).
 */
import { z } from 'zod';
import { validateDns1123Label, validateLabelKey, validateLabelValue } from '../policy/selector.js';
import { parseServiceDocument } from '../services/parse.js';
import type { Service } from '../services/types.js';
import { HOSTNAME_LABEL } from '../store/schema.js';
import { LocatedError, LocatedErrors, formatPath, parseYamlDocuments, readInputFile, zodIssuesToErrors, type FieldPath, type LocatedDoc } from '../yaml/located.js';
import {
  EXTERNAL_RANGE,
  FIRST_CLIENT_HOST,
  FIRST_NODE_HOST,
  FIRST_POD_HOST,
  HOST_IP,
  UNDERLAY6,
  cidrOf,
  decimalTwin,
  formatIP,
  parseIP,
  POD_RANGE6,
  NODE_CIDR_PREFIX6,
  type Family,
  LAST_NODE_HOST,
  MAX_CLIENTS,
  MAX_NODES,
  NODE_CIDR_PREFIX,
  POD_RANGE,
  SERVICE_CIDR,
  SERVICE_CIDR6,
  UNDERLAY_PREFIX,
  cidrContains,
  cidrsOverlap,
  clientBridgeIf,
  clientNetns,
  clientSocket,
  formatCidr,
  formatIPv4,
  nodeNetns,
  parseCidr,
  parseIPv4,
  podHostIf,
  podHostMac,
  podMac,
  podNetns,
  podSocket,
  uplinkPeerIf,
  type Cidr,
} from './topology.js';

/** An error in a lab spec: `FILE:LINE: field.path: detail`. */
export class LabSpecError extends LocatedError {
  override name = 'LabSpecError';
}

export type LabProtocol = 'TCP' | 'UDP';
export interface LabPort {
  name?: string;
  port: number;
  protocol: LabProtocol;
}

export interface PlannedNode {
  name: string;
  /** Position in the spec; decides the underlay address. */
  index: number;
  netns: string;
  /** The node's IPv4 address on the underlay. */
  underlayIP: string;
  /** Its addresses of every family the lab has, IPv4 first. */
  underlayIPs: string[];
  /** The node's IPv4 pod range. */
  podCIDR: string;
  /** Its pod ranges of every family the lab has, IPv4 first. */
  podCIDRs: string[];
  /** The uplink's peer on the underlay bridge (in tp-underlay). */
  uplinkPeer: string;
  /** Includes `kubernetes.io/hostname: <name>`, as the kubelet sets it. */
  labels: Record<string, string>;
}

export interface PlannedNamespace {
  name: string;
  /** Includes `kubernetes.io/metadata.name: <name>`, as Kubernetes adds it. */
  labels: Record<string, string>;
}

export interface PlannedPod {
  namespace: string;
  name: string;
  /** `namespace/name`, the key of the pod's store record. */
  key: string;
  node: string;
  /** The pod's IPv4 address. */
  ip: string;
  /** Its addresses of every family the lab has, IPv4 first. */
  ips: string[];
  labels: Record<string, string>;
  ports: LabPort[];
  netns: string;
  /** Host-side veth, in the node's namespace. */
  hostIf: string;
  hostMac: string;
  podMac: string;
  /** Control socket of the pod daemon. */
  socket: string;
}

/** A host outside the cluster, on the underlay only (topology.ts). */
export interface PlannedClient {
  name: string;
  netns: string;
  /** 10.250.0.(200 + position in the spec). */
  ip: string;
  /** With fd00:10:250::(200 + position) in a dual-stack lab. */
  ips: string[];
  /** Its veth's end on the underlay bridge (in tp-underlay); its own end is tp-eth0. */
  bridgeIf: string;
  /** Control socket of the client's daemon. */
  socket: string;
}

/** A Service of the spec: the document as written (applied with `tcplane apply`) and as parsed. */
export interface PlannedService {
  document: unknown;
  service: Service;
}

export interface LabPlan {
  file: string;
  /** [4], or [4, 6] for a dual-stack lab (any IPv6 pod range or pod address given). */
  families: Family[];
  nodes: PlannedNode[];
  namespaces: PlannedNamespace[];
  pods: PlannedPod[];
  clients: PlannedClient[];
  services: PlannedService[];
  /** The ClusterIP range the lab creates the cluster config with. */
  serviceCIDR: string;
}

export const METADATA_NAME_LABEL = 'kubernetes.io/metadata.name';

// ---- schemas ----

const syntax = (validate: (s: string) => string | undefined, what = '') =>
  z.string().superRefine((s, ctx) => {
    const bad = validate(s);
    if (bad) ctx.addIssue({ code: 'custom', message: `${what}${bad}` });
  });

const name = syntax(validateDns1123Label);
const labelKey = (s: string) => {
  const bad = validateLabelKey(s);
  return bad && `invalid label key ${JSON.stringify(s)}: ${bad}`;
};
const labels = z.record(syntax(labelKey), syntax(validateLabelValue, 'invalid label value: ')).nullish();

/** IANA service name, as Kubernetes requires of a container port's name. */
export function validatePortName(s: string): string | undefined {
  if (s.length > 15) return `must be at most 15 characters (has ${s.length})`;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s) || s.includes('--')) {
    return 'must be lowercase alphanumeric or "-", alphanumeric at both ends, without "--"';
  }
  if (!/[a-z]/.test(s)) return 'must contain at least one letter';
  return undefined;
}

const portSchema = z.strictObject({
  name: syntax(validatePortName).optional(),
  port: z.number().superRefine((n, ctx) => {
    if (!Number.isInteger(n) || n < 1 || n > 65535) ctx.addIssue({ code: 'custom', message: `must be an integer from 1 to 65535, got ${n}` });
  }),
  protocol: z.string().transform((p, ctx): LabProtocol => {
    if (p === 'TCP' || p === 'UDP') return p;
    ctx.addIssue({ code: 'custom', message: `unsupported protocol ${JSON.stringify(p)} (the lab serves TCP and UDP)` });
    return z.NEVER;
  }),
});

const nodeSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { name: v } : v),
  z.strictObject(
    { name, podCIDR: z.string().optional(), podCIDRs: z.array(z.string()).min(1).max(2).optional(), labels },
    { error: 'a node is a name or {name, podCIDR(s), labels}' },
  ),
);

const clientSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { name: v } : v),
  z.strictObject({ name }, { error: 'a client is a name or {name}' }),
);

const specSchema = z.strictObject({
  nodes: z.array(nodeSchema).min(1, 'a lab needs at least one node'),
  namespaces: z.array(z.strictObject({ name, labels })).nullish(),
  pods: z
    .array(
      z.strictObject({
        name,
        namespace: name,
        node: name,
        labels,
        ip: z.string().optional(),
        ips: z.array(z.string()).min(1).max(2).optional(),
        ports: z.array(portSchema).nullish(),
      }),
    )
    .nullish(),
  clients: z.array(clientSchema).nullish(),
  services: z.array(z.unknown()).nullish(),
  serviceCIDR: z.string().optional(),
});
type SpecIn = z.output<typeof specSchema>;

function describeIssue(iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'required';
    return `expected ${iss.expected === 'object' || iss.expected === 'record' ? 'a mapping' : iss.expected === 'array' ? 'a list' : `a ${iss.expected}`}, got ${JSON.stringify(iss.input)}`;
  }
  if (iss.code === 'invalid_key') return iss.issues.map((i) => i.message).join('; ');
  return undefined;
}

// ---- parsing ----

/**
 * Parses and validates a lab spec and decides every address.
 * @throws LocatedErrors of LabSpecError, holding every problem found.
 */
export function parseLabSpec(text: string, file: string): LabPlan {
  const { docs, errors: yamlErrors } = parseYamlDocuments(text, file);
  const errors = yamlErrors.map((e) => new LabSpecError(e.file, e.line, e.field, e.detail));
  if (errors.length === 0 && docs.length !== 1) {
    const line = docs[1]?.line ?? 1;
    errors.push(new LabSpecError(file, line, '', docs.length === 0 ? 'the file is empty' : 'a lab spec is one YAML document'));
  }
  if (errors.length > 0) throw new LocatedErrors(errors);
  const doc = docs[0];
  const parsed = specSchema.safeParse(doc.value, { error: describeIssue });
  if (!parsed.success) {
    throw new LocatedErrors(zodIssuesToErrors(parsed.error.issues, doc, file, (...a) => new LabSpecError(...a)));
  }
  const plan = planLab(parsed.data, doc, file, errors);
  if (errors.length > 0) {
    errors.sort((a, b) => a.line - b.line);
    throw new LocatedErrors(errors);
  }
  return plan;
}

/** Reads and parses a lab spec file (see parseLabSpec). */
export async function readLabSpec(path: string): Promise<LabPlan> {
  return parseLabSpec(await readInputFile(path), path);
}

/** Cross-field checks and allocation. Problems go to `errors`. */
function planLab(spec: SpecIn, doc: LocatedDoc, file: string, errors: LabSpecError[]): LabPlan {
  const fail = (path: FieldPath, detail: string) =>
    void errors.push(new LabSpecError(file, doc.lineOf(path), formatPath(path), detail));
  const serviceRange = planServiceCidr(spec.serviceCIDR, fail);

  // Families: IPv4 always; IPv6 too when any pod range or pod address is IPv6.
  const givenCidrs = spec.nodes.map((n) => n.podCIDRs ?? (n.podCIDR === undefined ? [] : [n.podCIDR]));
  const givenIps = (spec.pods ?? []).map((p) => p.ips ?? (p.ip === undefined ? [] : [p.ip]));
  const isV6 = (t: string) => parseIP(t.split('/')[0]!)?.family === 6;
  const families: Family[] = [...givenCidrs, ...givenIps].some((l) => l.some(isV6)) ? [4, 6] : [4];

  // Nodes: names, then given CIDRs, then allocated ones (per family).
  if (spec.nodes.length > MAX_NODES) {
    fail(['nodes'], `at most ${MAX_NODES} nodes (node addresses are 10.250.0.${FIRST_NODE_HOST}-${LAST_NODE_HOST})`);
  }
  const nodeLine = new Map<string, number>();
  spec.nodes.forEach((n, i) => {
    const first = nodeLine.get(n.name);
    if (first !== undefined) fail(['nodes', i, 'name'], `duplicate node ${n.name} (first at line ${first})`);
    else nodeLine.set(n.name, doc.lineOf(['nodes', i]));
    if (n.podCIDR !== undefined && n.podCIDRs !== undefined) fail(['nodes', i, 'podCIDRs'], 'give podCIDR or podCIDRs, not both');
  });
  const nodeRanges = planNodeRanges(spec, givenCidrs, families, serviceRange, fail);
  const hostBase = parseIPv4(HOST_IP)! - 1n; // 10.250.0.0
  const hostBase6 = cidrOf(UNDERLAY6).base;
  const nodes: PlannedNode[] = spec.nodes.map((n, index) => {
    const underlayIPs = [formatIPv4(hostBase + BigInt(FIRST_NODE_HOST + index))];
    if (families.includes(6)) underlayIPs.push(formatIP(6, hostBase6 + decimalTwin(FIRST_NODE_HOST + index)));
    const podCIDRs = families.map((f) => formatCidr(nodeRanges[f].cidrs[index]!));
    return {
      name: n.name,
      index,
      netns: nodeNetns(n.name),
      underlayIP: underlayIPs[0]!,
      underlayIPs,
      podCIDR: podCIDRs[0]!,
      podCIDRs,
      uplinkPeer: uplinkPeerIf(n.name),
      labels: { ...(n.labels ?? {}), [HOSTNAME_LABEL]: n.name },
    };
  });
  spec.nodes.forEach((n, i) => {
    const given = n.labels?.[HOSTNAME_LABEL];
    if (given !== undefined && given !== n.name) fail(['nodes', i, 'labels', HOSTNAME_LABEL], `must be the node's name (${n.name}) when given`);
  });

  // Namespaces.
  const nsLine = new Map<string, number>();
  const namespaces: PlannedNamespace[] = [];
  (spec.namespaces ?? []).forEach((ns, i) => {
    const first = nsLine.get(ns.name);
    if (first !== undefined) return fail(['namespaces', i, 'name'], `duplicate namespace ${ns.name} (first at line ${first})`);
    nsLine.set(ns.name, doc.lineOf(['namespaces', i]));
    const given = ns.labels ?? {};
    if (given[METADATA_NAME_LABEL] !== undefined && given[METADATA_NAME_LABEL] !== ns.name) {
      fail(['namespaces', i, 'labels', METADATA_NAME_LABEL], `must be the namespace's name (${ns.name}) when given`);
    }
    namespaces.push({ name: ns.name, labels: { ...given, [METADATA_NAME_LABEL]: ns.name } });
  });

  // Pods: references and given IPs first, then allocation.
  const podsIn = spec.pods ?? [];
  const podLine = new Map<string, number>();
  const netnsOwner = new Map<string, string>();
  const nodeIndex = new Map<string, number>();
  nodes.forEach((n, i) => nodeIndex.has(n.name) || nodeIndex.set(n.name, i));
  podsIn.forEach((p, i) => {
    const at = (...f: (string | number)[]): FieldPath => ['pods', i, ...f];
    const key = `${p.namespace}/${p.name}`;
    const first = podLine.get(key);
    if (first !== undefined) fail(at('name'), `duplicate pod ${key} (first at line ${first})`);
    else podLine.set(key, doc.lineOf(at()));
    if (!nsLine.has(p.namespace)) fail(at('namespace'), `unknown namespace ${p.namespace} (declare it under namespaces)`);
    if (!nodeIndex.has(p.node)) fail(at('node'), `unknown node ${p.node}`);
    const netns = podNetns(p.namespace, p.name);
    const owner = netnsOwner.get(netns);
    if (owner !== undefined && owner !== key) fail(at('name'), `pods ${owner} and ${key} would share the network namespace name ${netns}`);
    netnsOwner.set(netns, key);
    // Unix socket paths are limited to 107 bytes.
    if (Buffer.byteLength(podSocket(p.namespace, p.name)) > 107) {
      fail(at('name'), `namespace and pod name together are too long for the pod's control socket (at most ${107 - podSocket('', '').length} characters)`);
    }
    const seenPorts = new Map<string, number>();
    const seenNames = new Set<string>();
    (p.ports ?? []).forEach((port, j) => {
      const pk = `${port.port}/${port.protocol}`;
      if (seenPorts.has(pk)) fail(at('ports', j), `port ${pk} is declared twice`);
      seenPorts.set(pk, j);
      if (port.name !== undefined) {
        if (seenNames.has(port.name)) fail(at('ports', j, 'name'), `port name ${port.name} is used twice in this pod`);
        seenNames.add(port.name);
      }
    });
    if (p.ip !== undefined && p.ips !== undefined) fail(at('ips'), 'give ip or ips, not both');
  });
  const podIps = planPodAddresses(podsIn, givenIps, families, nodeIndex, nodeRanges, fail);
  const pods: PlannedPod[] = podsIn.map((p, i) => {
    const ips = families.map((f) => formatIP(f, podIps[i]![f]!));
    return {
      namespace: p.namespace,
      name: p.name,
      key: `${p.namespace}/${p.name}`,
      node: p.node,
      ip: ips[0]!,
      ips,
      labels: p.labels ?? {},
      ports: (p.ports ?? []).map((q) => (q.name === undefined ? { port: q.port, protocol: q.protocol } : { ...q })),
      netns: podNetns(p.namespace, p.name),
      hostIf: podHostIf(p.namespace, p.name),
      hostMac: podHostMac(p.namespace, p.name),
      podMac: podMac(p.namespace, p.name),
      socket: podSocket(p.namespace, p.name),
    };
  });

  // Clients: a bare name names a client wherever a node could be meant, so they differ.
  const clientsIn = spec.clients ?? [];
  if (clientsIn.length > MAX_CLIENTS) {
    fail(['clients'], `at most ${MAX_CLIENTS} clients (client addresses are 10.250.0.${FIRST_CLIENT_HOST}-254)`);
  }
  const clientLine = new Map<string, number>();
  clientsIn.forEach((c, i) => {
    const first = clientLine.get(c.name);
    if (first !== undefined) fail(['clients', i, 'name'], `duplicate client ${c.name} (first at line ${first})`);
    else clientLine.set(c.name, doc.lineOf(['clients', i]));
    const node = nodeLine.get(c.name);
    if (node !== undefined) fail(['clients', i, 'name'], `client ${c.name} has the name of the node at line ${node} (nodes and clients need different names)`);
  });
  const clients: PlannedClient[] = clientsIn.map((c, i) => {
    const ips = [formatIPv4(hostBase + BigInt(FIRST_CLIENT_HOST + i))];
    if (families.includes(6)) ips.push(formatIP(6, hostBase6 + decimalTwin(FIRST_CLIENT_HOST + i)));
    return { name: c.name, netns: clientNetns(c.name), ip: ips[0]!, ips, bridgeIf: clientBridgeIf(c.name), socket: clientSocket(c.name) };
  });
  const services = planServices(spec.services ?? [], doc, file, new Set(namespaces.map((n) => n.name)), errors);
  return { file, families, nodes, namespaces, pods, clients, services, serviceCIDR: formatCidr(serviceRange) };
}

/** Per family: the range each node's pods get, and which nodes' given range is unusable (their pods' addresses go unchecked). */
type NodeRanges = Record<Family, { cidrs: Cidr[]; bad: Set<number> }>;

/** The pod ranges of each family, their bounds, and the smallest range a node may have. */
const FAMILY_RANGES = {
  4: { pods: POD_RANGE, nodePrefix: NODE_CIDR_PREFIX, smallest: 28 },
  6: { pods: POD_RANGE6, nodePrefix: NODE_CIDR_PREFIX6, smallest: 120 },
} as const;

/**
 * Each node's pod range of each family: checked where given (inside the family's pod
 * range, not too small, disjoint from other nodes' and from the service range), else
 * allocated: 10.244.<k>.0/24 for the k-th free /24, fd00:10:244:<K>::/64 for IPv6 where
 * K is the node's IPv4 third octet when that /64 is free (so 10.244.3.0/24 pairs with
 * fd00:10:244:3::/64), else the first free K.
 */
function planNodeRanges(spec: SpecIn, given: string[][], families: Family[], serviceRange: Cidr, fail: (path: FieldPath, detail: string) => void): NodeRanges {
  const out: NodeRanges = { 4: { cidrs: [], bad: new Set() }, 6: { cidrs: [], bad: new Set() } };
  given.forEach((list, i) => {
    const many = spec.nodes[i]!.podCIDRs !== undefined;
    list.forEach((text, j) => {
      const at: FieldPath = many ? ['nodes', i, 'podCIDRs', j] : ['nodes', i, 'podCIDR'];
      const p = parseCidr(text);
      if ('error' in p) {
        // Still allocated one below, but its pods' addresses are not checked against it.
        for (const f of families) out[f].bad.add(i);
        return fail(at, p.error);
      }
      const c = p.cidr;
      const mine = out[c.family];
      if (mine.cidrs[i]) return fail(at, `a second IPv${c.family} range (a node has one range per family)`);
      const { pods, smallest } = FAMILY_RANGES[c.family];
      const range = cidrOf(pods);
      const other = mine.cidrs.findIndex((o) => o && cidrsOverlap(o, c));
      const bad =
        !cidrContains(range, c.family, c.base) || c.prefix <= range.prefix
          ? `${text} must lie inside ${pods} (and be smaller than it)`
          : c.prefix > smallest
            ? `${text} is too small for pods (at most /${smallest})`
            : other >= 0
              ? `${text} overlaps node ${spec.nodes[other]!.name}'s ${formatCidr(mine.cidrs[other]!)}`
              : cidrsOverlap(c, serviceRange)
                ? `${text} overlaps the lab's service range ${formatCidr(serviceRange)}`
                : undefined;
      if (bad) {
        fail(at, bad);
        mine.bad.add(i);
      }
      mine.cidrs[i] = c;
    });
  });
  for (const f of families) {
    const { pods, nodePrefix } = FAMILY_RANGES[f];
    const range = cidrOf(pods);
    const size = 1n << BigInt(f === 4 ? 32 - nodePrefix : 128 - nodePrefix);
    const candidate = (k: number): Cidr => ({ family: f, base: range.base + (f === 4 ? BigInt(k) : decimalTwin(k)) * size, prefix: nodePrefix, size });
    const free = (c: Cidr) => !cidrsOverlap(c, serviceRange) && !out[f].cidrs.some((o) => o && cidrsOverlap(o, c));
    let k = 1;
    spec.nodes.forEach((n, i) => {
      if (out[f].cidrs[i]) return;
      // IPv6 pairs with the node's IPv4 /24 when it can.
      const v4 = out[4].cidrs[i];
      const twin = f === 6 && v4 && v4.prefix === NODE_CIDR_PREFIX ? candidate(Number((v4.base >> 8n) & 0xffn)) : undefined;
      if (twin && free(twin)) return void (out[f].cidrs[i] = twin);
      for (; k < 256; k++) {
        const c = candidate(k);
        if (free(c)) {
          k++;
          return void (out[f].cidrs[i] = c);
        }
      }
      fail(['nodes', i], `no free /${nodePrefix} left in ${pods} for node ${n.name}`);
      out[f].cidrs[i] = { family: f, base: 0n, prefix: f === 4 ? 32 : 128, size: 1n };
    });
  }
  return out;
}

/**
 * Each pod's address of each family: checked where given (inside its node's range of
 * that family, not the range's network or IPv4 broadcast address, not another pod's),
 * else allocated: the twin of its other family's address when that is free (host .10 of
 * 10.244.1.0/24 pairs with ::a of fd00:10:244:1::/64), else the first free from
 * host FIRST_POD_HOST.
 */
function planPodAddresses(
  podsIn: NonNullable<SpecIn['pods']>,
  given: string[][],
  families: Family[],
  nodeIndex: Map<string, number>,
  ranges: NodeRanges,
  fail: (path: FieldPath, detail: string) => void,
): Partial<Record<Family, bigint>>[] {
  const taken: Record<Family, Map<bigint, string>> = { 4: new Map(), 6: new Map() };
  const out = podsIn.map((): Partial<Record<Family, bigint>> => ({}));
  const usable = (c: Cidr, v: bigint) => v !== c.base && !(c.family === 4 && v === c.base + c.size - 1n);
  podsIn.forEach((p, i) => {
    const key = `${p.namespace}/${p.name}`;
    const many = p.ips !== undefined;
    given[i]!.forEach((text, j) => {
      const at: FieldPath = many ? ['pods', i, 'ips', j] : ['pods', i, 'ip'];
      const a = parseIP(text);
      if (!a) return fail(at, `${JSON.stringify(text)} is not an IP address`);
      if (out[i]![a.family] !== undefined) return fail(at, `a second IPv${a.family} address (a pod has one address per family)`);
      const ni = nodeIndex.get(p.node);
      if (ni === undefined || ranges[a.family].bad.has(ni)) return;
      const c = ranges[a.family].cidrs[ni]!;
      if (!cidrContains(c, a.family, a.value)) return fail(at, `${text} is outside node ${p.node}'s podCIDR ${formatCidr(c)}`);
      if (!usable(c, a.value)) return fail(at, `${text} is the network${c.family === 4 ? ' or broadcast' : ''} address of ${formatCidr(c)}`);
      const holder = taken[a.family].get(a.value);
      if (holder !== undefined) return fail(at, `${text} is already pod ${holder}'s address`);
      taken[a.family].set(a.value, key);
      out[i]![a.family] = a.value;
    });
  });
  const next = families.map(() => new Map<number, bigint>());
  podsIn.forEach((p, i) => {
    const ni = nodeIndex.get(p.node) ?? 0;
    for (const f of families) {
      if (out[i]![f] !== undefined) continue;
      const c = ranges[f].cidrs[ni]!;
      const other = families.find((g) => g !== f && out[i]![g] !== undefined);
      if (other !== undefined) {
        const offset = out[i]![other]! - ranges[other].cidrs[ni]!.base;
        const twin = c.base + offset;
        if (offset >= 0n && offset < c.size && usable(c, twin) && !taken[f].has(twin)) {
          taken[f].set(twin, `${p.namespace}/${p.name}`);
          out[i]![f] = twin;
          continue;
        }
      }
      const cursor = next[families.indexOf(f)]!;
      let v = cursor.get(ni) ?? c.base + BigInt(FIRST_POD_HOST);
      while (v < c.base + c.size && (!usable(c, v) || taken[f].has(v))) v++;
      if (v >= c.base + c.size) {
        fail(['pods', i], `no free address left in node ${p.node}'s podCIDR ${formatCidr(c)} (allocation starts at host ${FIRST_POD_HOST})`);
        v = c.base;
      }
      cursor.set(ni, v + 1n);
      taken[f].set(v, `${p.namespace}/${p.name}`);
      out[i]![f] = v;
    }
  });
  return out;
}

/** Largest and smallest service ranges a lab takes (Kubernetes allows at most 20 host bits). */
const SERVICE_CIDR_PREFIX = { min: 12, max: 28 } as const;

/**
 * The spec's serviceCIDR (default SERVICE_CIDR), checked against the lab's fixed ranges;
 * node pod ranges are checked against it where they are planned. A bad one is reported
 * and the default stands in, so the other checks still run.
 */
function planServiceCidr(given: string | undefined, fail: (path: FieldPath, detail: string) => void): Cidr {
  const fallback = cidrOf(SERVICE_CIDR);
  if (given === undefined) return fallback;
  const p = parseCidr(given);
  if ('error' in p) {
    fail(['serviceCIDR'], p.error);
    return fallback;
  }
  const c = p.cidr;
  const fixed: [Cidr, string][] = [
    [cidrOf(`${formatIPv4(parseIPv4(HOST_IP)! - 1n)}/${UNDERLAY_PREFIX}`), 'the underlay'],
    [cidrOf(EXTERNAL_RANGE), 'the external and load balancer range'],
  ];
  const clash = fixed.find(([r]) => cidrsOverlap(c, r));
  const bad =
    c.family !== 4
      ? `${given} is not IPv4 (serviceCIDR is the lab's IPv4 service range; a dual-stack lab's IPv6 one is ${SERVICE_CIDR6})`
      : c.prefix < SERVICE_CIDR_PREFIX.min || c.prefix > SERVICE_CIDR_PREFIX.max
      ? `${given} must be a /${SERVICE_CIDR_PREFIX.min} to /${SERVICE_CIDR_PREFIX.max}`
      : clash
        ? `${given} overlaps ${clash[1]} ${formatCidr(clash[0])}`
        : undefined;
  if (bad) {
    fail(['serviceCIDR'], bad);
    return fallback;
  }
  return c;
}

/**
 * The spec's services, each checked by the parser `apply` uses, on a view of the lab
 * document rooted at the service (so errors name LAB.yaml's lines, as `services[i].…`).
 */
function planServices(docs: readonly unknown[], doc: LocatedDoc, file: string, namespaces: Set<string>, errors: LabSpecError[]): PlannedService[] {
  const out: PlannedService[] = [];
  docs.forEach((value, i) => {
    const at = (p: FieldPath): FieldPath => ['services', i, ...p];
    const view: LocatedDoc = {
      index: doc.index,
      value,
      line: doc.lineOf(at([])),
      lineOf: (p) => doc.lineOf(at(p)),
      keyLineOf: (p) => doc.keyLineOf(at(p)),
    };
    const found: LocatedError[] = [];
    const service = parseServiceDocument(view, file, found);
    for (const e of found) errors.push(new LabSpecError(e.file, e.line, formatPath(at(e.field ? fieldPath(e.field) : [])), e.detail));
    if (!service) return;
    if (!namespaces.has(service.namespace)) {
      errors.push(new LabSpecError(file, view.keyLineOf(['metadata']), formatPath(at(['metadata', 'namespace'])), `unknown namespace ${service.namespace} (declare it under namespaces)`));
      return;
    }
    out.push({ document: value, service: { ...service, source: { file, line: view.line } } });
  });
  return out;
}

/** `spec.ports[0].port` back to a path. */
function fieldPath(field: string): FieldPath {
  const out: (string | number)[] = [];
  for (const m of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}
