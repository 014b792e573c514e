/**
 * Cluster policy documents → the cluster-policy model (types.ts ClusterNetworkPolicy):
 *   ClusterNetworkPolicy        policy.networking.k8s.io/v1alpha2: tier Admin or Baseline,
 *                               priority, subject, ingress / egress with actions Accept,
 *                               Deny, Pass and `protocols`
 *   AdminNetworkPolicy          policy.networking.k8s.io/v1alpha1: the Admin tier, priority,
 *                               actions Allow (read as Accept), Deny, Pass and `ports`
 *   BaselineAdminNetworkPolicy  v1alpha1, named `default`: the Baseline tier, Allow and Deny
 * Each with the API's validation (one field of each peer, subject and port; at most 25
 * rules, peers and ports in v1alpha2, 100 in v1alpha1, 25 networks; a port range's start
 * below its end; tcp / udp / sctp with a destinationPort; rule names at most 100
 * characters; no named port beside a
 * networks or nodes peer), every error located. Fields the API defines that tcplane does
 * not enforce yet (`domainNames` peers) are rejected by name: a cluster policy enforced
 * with part of its meaning missing would be a hole.
 */
import { auditOf } from './audit-annotation.js';
import { z } from 'zod';
import { formatPath, zodIssuesToErrors, type LocatedDoc, type LocatedError } from '../yaml/located.js';
import { validateDns1123Subdomain, validateIanaServiceName } from '../yaml/names.js';
import { Reject, apiVersionSchema, atKeys, checked, describeIssue, metadataSchema, notSupportedYet } from '../yaml/schema-helpers.js';
import { PolicyError } from './errors.js';
import { prefixString } from './prefix.js';
import { cidrSchema, labelSelectorSchema, portNumber, protocolSchema, selector } from './schema-parts.js';
import type { ClusterAction, ClusterNetworkPolicy, ClusterPeer, ClusterPort, ClusterRule, ClusterSelector } from './types.js';

export const CLUSTER_API = { v1alpha2: 'policy.networking.k8s.io/v1alpha2', v1alpha1: 'policy.networking.k8s.io/v1alpha1' } as const;
export const CLUSTER_KINDS = ['ClusterNetworkPolicy', 'AdminNetworkPolicy', 'BaselineAdminNetworkPolicy'] as const;
export type ClusterKind = (typeof CLUSTER_KINDS)[number];

/** The API's list limits: v1alpha2 holds every list to 25; v1alpha1 rules, peers and ports to 100, networks to 25. */
const LIMITS = { v1alpha2: 25, v1alpha1: 100, networks: 25 } as const;
const NOT_YET_DOMAINS = 'domainNames peers are not supported yet (tcplane does not match by DNS name)';

/**
 * One cluster policy document of `kind`: validate, normalize. Errors go to `errors`.
 */
export function parseClusterPolicyDocument(kind: ClusterKind, doc: LocatedDoc, file: string, errors: LocatedError[]): ClusterNetworkPolicy | undefined {
  const schema = kind === 'ClusterNetworkPolicy' ? cnpSchema : kind === 'AdminNetworkPolicy' ? anpSchema : banpSchema;
  const parsed = schema.safeParse(doc.value, { error: describeIssue });
  if (!parsed.success) {
    errors.push(...zodIssuesToErrors(parsed.error.issues, atKeys(doc), file, (...a) => new PolicyError(...a)));
    return undefined;
  }
  const d = parsed.data;
  if (d.metadata.namespace != null) {
    errors.push(new PolicyError(file, doc.keyLineOf(['metadata', 'namespace']), formatPath(['metadata', 'namespace']), `${kind} is cluster-scoped: it takes no namespace`));
    return undefined;
  }
  const audit = auditOf(d.metadata.annotations, doc, file, errors);
  if (!audit) return undefined;
  const spec = d.spec as SpecOut;
  return {
    kind,
    apiVersion: kind === 'ClusterNetworkPolicy' ? CLUSTER_API.v1alpha2 : CLUSTER_API.v1alpha1,
    name: d.metadata.name,
    tier: spec.tier ?? (kind === 'AdminNetworkPolicy' ? 'Admin' : 'Baseline'),
    priority: spec.priority ?? 0,
    subject: clusterSelector(spec.subject),
    ingress: (spec.ingress ?? []).map((r) => rule(r, r.from)),
    egress: (spec.egress ?? []).map((r) => rule(r, r.to)),
    ...audit,
    source: { file, line: doc.line },
  };
}

// ---- normalization ----

type SelectorOut = z.output<ReturnType<typeof subjectSchema>>;
type EgressPeerOut = z.output<ReturnType<typeof egressPeerSchema>>;
type RuleOut = { name?: string | null; action: ClusterAction; ports?: ClusterPort[] | null };
type SpecOut = {
  tier?: ClusterNetworkPolicy['tier'];
  priority?: number;
  subject: SelectorOut;
  ingress?: (RuleOut & { from: SelectorOut[] })[] | null;
  egress?: (RuleOut & { to: EgressPeerOut[] })[] | null;
};

function clusterSelector(s: SelectorOut): ClusterSelector {
  if (s.namespaces) return { namespaces: selector(s.namespaces) };
  return { pods: { namespaceSelector: selector(s.pods!.namespaceSelector), podSelector: selector(s.pods!.podSelector) } };
}

function peer(p: EgressPeerOut): ClusterPeer {
  if ('networks' in p && p.networks) return { networks: [...new Set(p.networks.map(prefixString))] };
  if ('nodes' in p && p.nodes) return { nodes: selector(p.nodes) };
  return clusterSelector(p as SelectorOut);
}

function rule(r: RuleOut, peers: (SelectorOut | EgressPeerOut)[]): ClusterRule {
  return {
    ...(r.name ? { name: r.name } : {}),
    action: r.action,
    peers: peers.map((p) => peer(p as EgressPeerOut)),
    ...(r.ports && r.ports.length > 0 ? { ports: r.ports } : {}),
  };
}

// ---- schemas ----

/** Exactly one of `fields` set (the API's MinProperties = MaxProperties = 1). */
const exactlyOne =
  (fields: readonly string[], what: string) =>
  (v: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const set = fields.filter((f) => v[f] != null);
    if (set.length === 1) return;
    const message = set.length === 0 ? `${what} needs one of ${fields.join(', ')}` : `${what} takes one of ${fields.join(', ')}, not ${set.join(' and ')}`;
    ctx.addIssue({ code: 'custom', path: set.length > 1 ? [set[1]!] : [], message });
  };

/** v1alpha2's namespaceSelector may be left out (every namespace); v1alpha1 wants it. */
const namespacedPod = (optionalNamespaces: boolean) =>
  z.strictObject({
    namespaceSelector: optionalNamespaces ? labelSelectorSchema.nullish().transform((v) => v ?? {}) : labelSelectorSchema,
    podSelector: labelSelectorSchema,
  });
const subjectShape = (v2: boolean) => ({ namespaces: labelSelectorSchema.nullish(), pods: namespacedPod(v2).nullish() });
const subjectSchema = (v2: boolean) => z.strictObject(subjectShape(v2)).superRefine(exactlyOne(['namespaces', 'pods'], 'a subject'));
const ingressPeerSchema = (v2: boolean) => z.strictObject(subjectShape(v2)).superRefine(exactlyOne(['namespaces', 'pods'], 'a peer'));

/** A set of CIDRs (listType=set: no entry twice), at most 25. */
const networksSchema = z
  .array(cidrSchema)
  .min(1)
  .max(LIMITS.networks)
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((c, i) => {
      const key = prefixString(c);
      const j = seen.get(key);
      if (j !== undefined) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate network ${key} (also networks[${j}])` });
      else seen.set(key, i);
    });
  });

/** `domainNames`: ClusterNetworkPolicy and AdminNetworkPolicy have it (refused, not yet), BaselineAdminNetworkPolicy does not. */
const egressPeerSchema = (v2: boolean, domainNames: boolean) =>
  z
    .strictObject({
      ...subjectShape(v2),
      networks: networksSchema.nullish(),
      nodes: labelSelectorSchema.nullish(),
      ...(domainNames ? { domainNames: notSupportedYet(NOT_YET_DOMAINS) } : {}),
    })
    .superRefine(exactlyOne(['namespaces', 'pods', 'networks', 'nodes'], 'a peer'));

const ruleName = z.string().max(100, 'at most 100 characters').nullish();

const action = (allowed: readonly string[], as: Record<string, ClusterAction> = {}) =>
  checked((v): ClusterAction | Reject => {
    if (typeof v === 'string' && allowed.includes(v)) return (as[v] ?? v) as ClusterAction;
    return new Reject(v == null ? `required (${allowed.join(', ')})` : `unknown action ${JSON.stringify(v)} (supported: ${allowed.join(', ')})`);
  });

const namedPort = checked((v) => {
  if (typeof v !== 'string') return new Reject(`expected a port name, got ${JSON.stringify(v)}`);
  const bad = validateIanaServiceName(v);
  return bad ? new Reject(`invalid port name ${JSON.stringify(v)}: ${bad}`) : v;
});

/** v1alpha2: `{number}` or `{range: {start, end}}` (start below end). */
const destinationPort = z
  .strictObject({
    number: checked((v) => (v == null ? undefined : portNumber(v))),
    range: z
      .strictObject({ start: checked(portNumber), end: checked(portNumber) })
      .refine((r) => r.start < r.end, { message: 'end must be above start (one port is `number`)', path: ['end'] })
      .nullish(),
  })
  .superRefine(exactlyOne(['number', 'range'], 'a destinationPort'));
/** The API's tcp / udp / sctp take a destinationPort (MinProperties 1): every port is the range 1-65535. */
const protocolMatch = z.strictObject({ destinationPort }).nullish();

/** v1alpha2 protocols → ports: one of tcp, udp, sctp (each every port, one, or a range) or destinationNamedPort. */
const protocolsSchema = z
  .array(
    z
      .strictObject({ tcp: protocolMatch, udp: protocolMatch, sctp: protocolMatch, destinationNamedPort: namedPort.nullish() })
      .superRefine(exactlyOne(['tcp', 'udp', 'sctp', 'destinationNamedPort'], 'a protocol'))
      .transform((p): ClusterPort => {
        if (p.destinationNamedPort) return { name: p.destinationNamedPort };
        const [protocol, m] = p.tcp !== undefined && p.tcp !== null ? (['TCP', p.tcp] as const) : p.udp ? (['UDP', p.udp] as const) : (['SCTP', p.sctp!] as const);
        const d = m.destinationPort;
        if (d.range) return d.range.start === 1 && d.range.end === 65535 ? { protocol } : { protocol, port: d.range.start, endPort: d.range.end };
        return { protocol, port: d.number! };
      }),
  )
  .min(1)
  .max(LIMITS.v1alpha2);

/** v1alpha1 ports: one of portNumber {protocol, port}, portRange {protocol, start, end} (start below end) or namedPort. */
const portsSchema = z
  .array(
    z
      .strictObject({
        portNumber: z.strictObject({ protocol: protocolSchema, port: checked(portNumber) }).nullish(),
        portRange: z
          .strictObject({ protocol: protocolSchema, start: checked(portNumber), end: checked(portNumber) })
          .refine((r) => r.start < r.end, { message: 'end must be above start (one port is portNumber)', path: ['end'] })
          .nullish(),
        namedPort: namedPort.nullish(),
      })
      .superRefine(exactlyOne(['portNumber', 'portRange', 'namedPort'], 'a port'))
      .transform((p): ClusterPort => {
        if (p.namedPort) return { name: p.namedPort };
        if (p.portRange) {
          const r = p.portRange;
          return r.start === 1 && r.end === 65535 ? { protocol: r.protocol } : { protocol: r.protocol, port: r.start, endPort: r.end };
        }
        return { protocol: p.portNumber!.protocol, port: p.portNumber!.port };
      }),
  )
  .min(1)
  .max(LIMITS.v1alpha1);

/** The API's rule: a named port needs a pod peer (networks and nodes have no named ports). */
const noNamedPortWithNetworks = (r: { to: EgressPeerOut[]; ports?: ClusterPort[] | null }, ctx: z.RefinementCtx, field: string) => {
  const at = r.to.findIndex((p) => ('networks' in p && p.networks) || ('nodes' in p && p.nodes));
  const named = (r.ports ?? []).findIndex((p) => 'name' in p);
  if (at >= 0 && named >= 0) ctx.addIssue({ code: 'custom', path: [field, named], message: `a named port cannot go with a networks or nodes peer (to[${at}]): they have no named ports` });
};

const rules = <A extends z.ZodType, P extends z.ZodType>(act: A, ports: P, portsField: 'protocols' | 'ports', o: { v2: boolean; domainNames: boolean }) => {
  const max = o.v2 ? LIMITS.v1alpha2 : LIMITS.v1alpha1;
  const ingress = z.strictObject({ name: ruleName, action: act, from: z.array(ingressPeerSchema(o.v2)).min(1).max(max), [portsField]: ports.nullish() });
  const egress = z
    .strictObject({ name: ruleName, action: act, to: z.array(egressPeerSchema(o.v2, o.domainNames)).min(1).max(max), [portsField]: ports.nullish() })
    .superRefine((r, ctx) => noNamedPortWithNetworks({ to: r.to as EgressPeerOut[], ports: r[portsField] as ClusterPort[] | null | undefined }, ctx, portsField));
  // The model's rules carry `ports` whatever the version calls them.
  const asPorts = (r: Record<string, unknown>) => ({ ...r, ports: r[portsField] });
  return {
    ingress: z.array(ingress.transform(asPorts)).max(max, `at most ${max} rules`).nullish(),
    egress: z.array(egress.transform(asPorts)).max(max, `at most ${max} rules`).nullish(),
  };
};

const priority = checked((v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1000 ? v : new Reject(`must be an integer from 0 to 1000, got ${JSON.stringify(v)}`)));
const tier = checked((v) => (v === 'Admin' || v === 'Baseline' ? v : new Reject(v == null ? 'required (Admin or Baseline)' : `unknown tier ${JSON.stringify(v)} (supported: Admin, Baseline)`)));

const cnpSchema = z.strictObject({
  apiVersion: apiVersionSchema(CLUSTER_API.v1alpha2, 'ClusterNetworkPolicy'),
  kind: z.literal('ClusterNetworkPolicy'),
  metadata: metadataSchema(validateDns1123Subdomain),
  spec: z.strictObject({ tier, priority, subject: subjectSchema(true), ...rules(action(['Accept', 'Deny', 'Pass']), protocolsSchema, 'protocols', { v2: true, domainNames: true }) }),
  status: z.unknown().optional(),
});

const anpSchema = z.strictObject({
  apiVersion: apiVersionSchema(CLUSTER_API.v1alpha1, 'AdminNetworkPolicy'),
  kind: z.literal('AdminNetworkPolicy'),
  metadata: metadataSchema(validateDns1123Subdomain),
  spec: z.strictObject({ priority, subject: subjectSchema(false), ...rules(action(['Allow', 'Deny', 'Pass'], { Allow: 'Accept' }), portsSchema, 'ports', { v2: false, domainNames: true }) }),
  status: z.unknown().optional(),
});

const banpSchema = z.strictObject({
  apiVersion: apiVersionSchema(CLUSTER_API.v1alpha1, 'BaselineAdminNetworkPolicy'),
  kind: z.literal('BaselineAdminNetworkPolicy'),
  metadata: metadataSchema((n) => (n === 'default' ? undefined : `a BaselineAdminNetworkPolicy must be named "default" (there is one per cluster), got ${JSON.stringify(n)}`)),
  spec: z.strictObject({ subject: subjectSchema(false), ...rules(action(['Allow', 'Deny'], { Allow: 'Accept' }), portsSchema, 'ports', { v2: false, domainNames: false }) }),
  status: z.unknown().optional(),
});
