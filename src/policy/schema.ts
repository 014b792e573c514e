/**
 * The normalized policy model as it travels through the store: `tcplane apply` writes
 * documents `parsePolicyText` produced (as `storedPolicy` shapes them), agents check them
 * with this schema where they arrive (a corrupt or foreign value is reported and skipped,
 * never enforced half-read). The schema holds what the parser guarantees, so a record
 * that did not come from it cannot mean something else than it says: lists of peers and
 * ports are absent or non-empty, an ipBlock stands alone in its peer with canonical
 * prefixes, each except strictly inside its cidr.
 *
 * Versions: a record from an earlier tcplane (no matchExpressions, no egress) reads as
 * the same policy, those fields default to empty; and `storedPolicy` leaves them out when
 * empty, so an earlier agent (whose schema knows neither) still reads every policy that
 * does not use them. One that does use them (or ipBlock, or a named port in an egress
 * rule) it refuses and logs: upgrade agents first.
 */
import { z } from 'zod';
import { parsePrefix, prefixContains, prefixString } from './prefix.js';
import type { LabelSelector, PolicyDocument, PolicyPeer } from './types.js';

const requirement = z
  .strictObject({
    key: z.string().min(1),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: z.array(z.string()),
  })
  .refine((r) => (r.operator === 'In' || r.operator === 'NotIn' ? r.values.length > 0 : r.values.length === 0), 'In and NotIn need values, Exists and DoesNotExist take none');
const labelSelector = z.strictObject({
  matchLabels: z.record(z.string(), z.string()),
  matchExpressions: z.array(requirement).default([]),
});
/** A prefix in the parser's canonical text (prefix.ts). */
const canonicalPrefix = z.string().refine((t) => {
  const p = parsePrefix(t);
  return typeof p !== 'string' && prefixString(p) === t;
}, 'a canonical CIDR');
/** Every except strictly inside cidr; false (never a throw) for text that is no prefix, which canonicalPrefix reports. */
const exceptsInside = (b: { cidr: string; except: string[] }) => {
  const cidr = parsePrefix(b.cidr);
  return (
    typeof cidr !== 'string' &&
    b.except.every((t) => {
      const e = parsePrefix(t);
      return typeof e !== 'string' && e.len > cidr.len && prefixContains(cidr, e);
    })
  );
};
const ipBlock = z.strictObject({ cidr: canonicalPrefix, except: z.array(canonicalPrefix) }).refine(exceptsInside, 'every except strictly inside cidr');
const peer = z
  .strictObject({ podSelector: labelSelector.optional(), namespaceSelector: labelSelector.optional(), ipBlock: ipBlock.optional() })
  .refine((p) => (p.ipBlock ? !p.podSelector && !p.namespaceSelector : p.podSelector || p.namespaceSelector), 'a peer needs podSelector or namespaceSelector, or ipBlock alone');
const port = z
  .strictObject({
    protocol: z.enum(['TCP', 'UDP', 'SCTP']),
    port: z.union([z.number().int().min(1).max(65535), z.string().min(1)]).optional(),
    endPort: z.number().int().min(1).max(65535).optional(),
  })
  .refine((p) => p.endPort === undefined || (typeof p.port === 'number' && p.endPort >= p.port), 'endPort needs a numeric port at or below it');
const ingressRule = z.strictObject({ from: z.array(peer).min(1).optional(), ports: z.array(port).min(1).optional() });
const egressRule = z.strictObject({ to: z.array(peer).min(1).optional(), ports: z.array(port).min(1).optional() });

export const networkPolicySchema = z.strictObject({
  kind: z.literal('NetworkPolicy'),
  apiVersion: z.literal('networking.k8s.io/v1'),
  namespace: z.string().min(1),
  name: z.string().min(1),
  podSelector: labelSelector,
  policyTypes: z.array(z.enum(['Ingress', 'Egress'])),
  ingress: z.array(ingressRule),
  egress: z.array(egressRule).default([]),
  audit: z.literal(true).optional(),
  source: z.strictObject({ file: z.string(), line: z.number().int() }),
});

/**
 * The document as the store keeps it: empty matchExpressions and an empty egress list
 * left out (see the header), everything else as parsed.
 */
export function storedPolicy(p: PolicyDocument): unknown {
  if (p.kind !== 'NetworkPolicy') return p; // cluster kinds: as parsed (an agent from before them refuses the record: upgrade agents first)
  const sel = (s: LabelSelector) => (s.matchExpressions.length > 0 ? s : { matchLabels: s.matchLabels });
  const peers = (list: PolicyPeer[]) =>
    list.map((x) => ({
      ...(x.podSelector ? { podSelector: sel(x.podSelector) } : {}),
      ...(x.namespaceSelector ? { namespaceSelector: sel(x.namespaceSelector) } : {}),
      ...(x.ipBlock ? { ipBlock: x.ipBlock } : {}),
    }));
  const { egress, ...rest } = p;
  return {
    ...rest,
    podSelector: sel(p.podSelector),
    ingress: p.ingress.map((r) => ({ ...r, ...(r.from ? { from: peers(r.from) } : {}) })),
    ...(egress.length > 0 ? { egress: egress.map((r) => ({ ...r, ...(r.to ? { to: peers(r.to) } : {}) })) } : {}),
  };
}

// ---- cluster policies (parse-cluster.ts) ----

const namespacedPod = z.strictObject({ namespaceSelector: labelSelector, podSelector: labelSelector });
/** Exactly one of namespaces and pods, as the parser leaves it. */
const clusterSelector = z
  .strictObject({ namespaces: labelSelector.optional(), pods: namespacedPod.optional() })
  .refine((s) => (s.namespaces === undefined) !== (s.pods === undefined), 'one of namespaces and pods');
const clusterPeer = z
  .strictObject({ namespaces: labelSelector.optional(), pods: namespacedPod.optional(), networks: z.array(canonicalPrefix).min(1).optional(), nodes: labelSelector.optional() })
  .refine((p) => [p.namespaces, p.pods, p.networks, p.nodes].filter((x) => x !== undefined).length === 1, 'one of namespaces, pods, networks and nodes');
const clusterPort = z.union([
  z
    .strictObject({ protocol: z.enum(['TCP', 'UDP', 'SCTP']), port: z.number().int().min(1).max(65535).optional(), endPort: z.number().int().min(1).max(65535).optional() })
    .refine((p) => p.endPort === undefined || (p.port !== undefined && p.endPort >= p.port), 'endPort needs a port at or below it'),
  z.strictObject({ name: z.string().min(1) }),
]);
const clusterRule = z.strictObject({
  name: z.string().max(100).optional(),
  action: z.enum(['Accept', 'Deny', 'Pass']),
  peers: z.array(clusterPeer).min(1),
  ports: z.array(clusterPort).min(1).optional(),
});

export const clusterNetworkPolicySchema = z
  .strictObject({
    kind: z.enum(['ClusterNetworkPolicy', 'AdminNetworkPolicy', 'BaselineAdminNetworkPolicy']),
    apiVersion: z.enum(['policy.networking.k8s.io/v1alpha2', 'policy.networking.k8s.io/v1alpha1']),
    name: z.string().min(1),
    tier: z.enum(['Admin', 'Baseline']),
    priority: z.number().int().min(0).max(1000),
    subject: clusterSelector,
    ingress: z.array(clusterRule),
    egress: z.array(clusterRule),
    audit: z.literal(true).optional(),
    source: z.strictObject({ file: z.string(), line: z.number().int() }),
  })
  .refine((p) => p.kind !== 'BaselineAdminNetworkPolicy' || (p.tier === 'Baseline' && p.ingress.concat(p.egress).every((r) => r.action !== 'Pass')), 'a BaselineAdminNetworkPolicy is Baseline and has no Pass')
  .refine((p) => p.kind !== 'AdminNetworkPolicy' || p.tier === 'Admin', 'an AdminNetworkPolicy is Admin');

/** A stored policy of any kind, checked by its kind's schema (so its messages stay that schema's). */
export const policyDocumentSchema: z.ZodType<PolicyDocument, unknown> = z.unknown().transform((v, ctx): PolicyDocument => {
  const isNp = typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'NetworkPolicy';
  const r = (isNp ? networkPolicySchema : clusterNetworkPolicySchema).safeParse(v);
  if (r.success) return r.data as PolicyDocument;
  for (const i of r.error.issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
  return z.NEVER;
});
