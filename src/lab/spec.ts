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
  LAST_NODE_HOST,
  MAX_CLIENTS,
  MAX_NODES,
  NODE_CIDR_PREFIX,
  POD_RANGE,
  SERVICE_CIDR,
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
  underlayIP: string;
  podCIDR: string;
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
  ip: string;
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
  z.strictObject({ name, podCIDR: z.string().optional(), labels }, { error: 'a node is a name or {name, podCIDR, labels}' }),
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
  const range = (parseCidr(POD_RANGE) as { cidr: Cidr }).cidr;
  const serviceRange = planServiceCidr(spec.serviceCIDR, fail);

  // Nodes: names, then given CIDRs, then allocated ones.
  if (spec.nodes.length > MAX_NODES) {
    fail(['nodes'], `at most ${MAX_NODES} nodes (node addresses are 10.250.0.${FIRST_NODE_HOST}-${LAST_NODE_HOST})`);
  }
  const nodeLine = new Map<string, number>();
  const cidrs: (Cidr | undefined)[] = [];
  const badCidr = new Set<number>();
  spec.nodes.forEach((n, i) => {
    const at = (field?: string): FieldPath => (field ? ['nodes', i, field] : ['nodes', i]);
    const first = nodeLine.get(n.name);
    if (first !== undefined) fail(at('name'), `duplicate node ${n.name} (first at line ${first})`);
    else nodeLine.set(n.name, doc.lineOf(at()));
    if (n.podCIDR === undefined) return void cidrs.push(undefined);
    const p = parseCidr(n.podCIDR);
    if ('error' in p) {
      badCidr.add(i); // still allocated one below, but its pods' IPs are not checked against it
      fail(at('podCIDR'), p.error);
      return void cidrs.push(undefined);
    }
    const c = p.cidr;
    const other = cidrs.findIndex((o) => o && cidrsOverlap(o, c));
    const bad =
      !cidrContains(range, c.base) || c.prefix <= range.prefix
        ? `${n.podCIDR} must lie inside ${POD_RANGE} (and be smaller than it)`
        : c.prefix > 28
          ? `${n.podCIDR} is too small for pods (at most /28)`
          : other >= 0
            ? `${n.podCIDR} overlaps node ${spec.nodes[other].name}'s ${formatCidr(cidrs[other]!)}`
            : cidrsOverlap(c, serviceRange)
              ? `${n.podCIDR} overlaps the lab's service range ${formatCidr(serviceRange)}`
              : undefined;
    if (bad) {
      fail(at('podCIDR'), bad);
      badCidr.add(i);
    }
    cidrs.push(c);
  });
  let k = 1;
  const nodeCidrs = spec.nodes.map((n, i): Cidr => {
    const given = cidrs[i];
    if (given) return given;
    for (; k < 256; k++) {
      const c = { base: range.base + k * 256, prefix: NODE_CIDR_PREFIX, size: 256 };
      if (cidrsOverlap(c, serviceRange)) continue;
      if (!cidrs.some((o) => o && cidrsOverlap(o, c))) {
        k++;
        cidrs[i] = c;
        return c;
      }
    }
    fail(['nodes', i], `no free /${NODE_CIDR_PREFIX} left in ${POD_RANGE} for node ${n.name}`);
    return { base: 0, prefix: 32, size: 1 };
  });
  const hostBase = parseIPv4(HOST_IP)! - 1; // 10.250.0.0
  const nodes: PlannedNode[] = spec.nodes.map((n, index) => ({
    name: n.name,
    index,
    netns: nodeNetns(n.name),
    underlayIP: formatIPv4(hostBase + FIRST_NODE_HOST + index),
    podCIDR: formatCidr(nodeCidrs[index]),
    uplinkPeer: uplinkPeerIf(n.name),
    labels: { ...(n.labels ?? {}), [HOSTNAME_LABEL]: n.name },
  }));
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
  const taken = new Map<number, string>(); // ip → pod key
  const nodeIndex = new Map<string, number>();
  nodes.forEach((n, i) => nodeIndex.has(n.name) || nodeIndex.set(n.name, i));
  const given: (number | undefined)[] = [];
  podsIn.forEach((p, i) => {
    const at = (...f: (string | number)[]): FieldPath => ['pods', i, ...f];
    const key = `${p.namespace}/${p.name}`;
    const first = podLine.get(key);
    if (first !== undefined) fail(at('name'), `duplicate pod ${key} (first at line ${first})`);
    else podLine.set(key, doc.lineOf(at()));
    if (!nsLine.has(p.namespace)) fail(at('namespace'), `unknown namespace ${p.namespace} (declare it under namespaces)`);
    const ni = nodeIndex.get(p.node);
    if (ni === undefined) fail(at('node'), `unknown node ${p.node}`);
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
    given.push(undefined);
    if (p.ip === undefined) return;
    const ip = parseIPv4(p.ip);
    if (ip === undefined) return fail(at('ip'), `${JSON.stringify(p.ip)} is not an IPv4 address`);
    if (ni === undefined || badCidr.has(ni)) return;
    const c = nodeCidrs[ni];
    if (!cidrContains(c, ip)) return fail(at('ip'), `${p.ip} is outside node ${p.node}'s podCIDR ${formatCidr(c)}`);
    if (ip === c.base || ip === c.base + c.size - 1) return fail(at('ip'), `${p.ip} is the network or broadcast address of ${formatCidr(c)}`);
    const holder = taken.get(ip);
    if (holder !== undefined) return fail(at('ip'), `${p.ip} is already pod ${holder}'s address`);
    taken.set(ip, key);
    given[i] = ip;
  });
  const next = nodes.map((_, i) => nodeCidrs[i].base + FIRST_POD_HOST);
  const pods: PlannedPod[] = podsIn.map((p, i) => {
    const ni = nodeIndex.get(p.node) ?? 0;
    let ip = given[i];
    if (ip === undefined) {
      const c = nodeCidrs[ni];
      while (next[ni] < c.base + c.size - 1 && taken.has(next[ni])) next[ni]++;
      if (next[ni] >= c.base + c.size - 1) {
        fail(['pods', i], `no free address left in node ${p.node}'s podCIDR ${formatCidr(c)} (allocation starts at .${FIRST_POD_HOST})`);
      }
      ip = next[ni]++;
      taken.set(ip, `${p.namespace}/${p.name}`);
    }
    return {
      namespace: p.namespace,
      name: p.name,
      key: `${p.namespace}/${p.name}`,
      node: p.node,
      ip: formatIPv4(ip),
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
  const clients: PlannedClient[] = clientsIn.map((c, i) => ({
    name: c.name,
    netns: clientNetns(c.name),
    ip: formatIPv4(hostBase + FIRST_CLIENT_HOST + i),
    bridgeIf: clientBridgeIf(c.name),
    socket: clientSocket(c.name),
  }));
  const services = planServices(spec.services ?? [], doc, file, new Set(namespaces.map((n) => n.name)), errors);
  return { file, nodes, namespaces, pods, clients, services, serviceCIDR: formatCidr(serviceRange) };
}

/** Largest and smallest service ranges a lab takes (Kubernetes allows at most 20 host bits). */
const SERVICE_CIDR_PREFIX = { min: 12, max: 28 } as const;

/**
 * The spec's serviceCIDR (default SERVICE_CIDR), checked against the lab's fixed ranges;
 * node pod ranges are checked against it where they are planned. A bad one is reported
 * and the default stands in, so the other checks still run.
 */
function planServiceCidr(given: string | undefined, fail: (path: FieldPath, detail: string) => void): Cidr {
  const fallback = (parseCidr(SERVICE_CIDR) as { cidr: Cidr }).cidr;
  if (given === undefined) return fallback;
  const p = parseCidr(given);
  if ('error' in p) {
    fail(['serviceCIDR'], p.error);
    return fallback;
  }
  const c = p.cidr;
  const underlay = { base: parseIPv4(HOST_IP)! - 1, prefix: UNDERLAY_PREFIX, size: 2 ** (32 - UNDERLAY_PREFIX) };
  const fixed: [Cidr, string][] = [
    [underlay, 'the underlay'],
    [(parseCidr(EXTERNAL_RANGE) as { cidr: Cidr }).cidr, 'the external and load balancer range'],
  ];
  const clash = fixed.find(([r]) => cidrsOverlap(c, r));
  const bad =
    c.prefix < SERVICE_CIDR_PREFIX.min || c.prefix > SERVICE_CIDR_PREFIX.max
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
