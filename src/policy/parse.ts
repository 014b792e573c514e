/**
 * Policy files → the normalized model (types.ts). Multi-document YAML; each document is
 * validated with a strict zod schema, so a misspelt field is an error and never a rule
 * silently dropped. Whatever Kubernetes accepts but v0 cannot enforce yet (egress,
 * matchExpressions, ipBlock, named ports, endPort, SCTP, the cluster-scoped kinds) is
 * rejected as "not supported yet" at the field that uses it: a policy enforced with part
 * of its meaning missing would be a security hole.
 *
 * Every error of every document is collected and thrown at once as `LocatedErrors` of
 * `PolicyError`s (`FILE:LINE: field.path: detail`), sorted by line.
 */
import { z } from 'zod';
import {
  LocatedErrors,
  formatPath,
  parseYamlDocuments,
  readInputFile,
  zodIssuesToErrors,
  type LocatedDoc,
  type LocatedError,
} from '../yaml/located.js';
import { validateDns1123Subdomain } from '../yaml/names.js';
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
import { PolicyError } from './errors.js';
import type { IngressRule, LabelSelector, NetworkPolicy, PolicyDocument, PolicyPeer, PolicyPort } from './types.js';

const NP_API = 'networking.k8s.io/v1';
/** Kinds tcplane will read (DESIGN.md) that v0 does not yet. */
const LATER_KINDS = new Set(['ClusterNetworkPolicy', 'AdminNetworkPolicy', 'BaselineAdminNetworkPolicy', 'Service']); // (Service: read by the CLI's manifest reader, src/cli/manifest.ts)

/**
 * Parses and validates every document of a policy file. Empty documents are skipped.
 * @param file names the input in error messages and in each document's `source`.
 * @throws LocatedErrors holding every PolicyError found; a file with any error yields nothing.
 */
export function parsePolicyText(text: string, file: string): PolicyDocument[] {
  const { docs, errors: yamlErrors } = parseYamlDocuments(text, file);
  const errors: PolicyError[] = yamlErrors.map((e) => new PolicyError(e.file, e.line, e.field, e.detail));
  const out: PolicyDocument[] = [];
  const seen = new Map<string, number>();
  for (const doc of docs) {
    const policy = parseDocument(doc, file, errors);
    if (!policy) continue;
    const key = `${policy.kind}/${policy.namespace}/${policy.name}`;
    const first = seen.get(key);
    if (first !== undefined) {
      const line = doc.keyLineOf(['metadata', 'name']);
      const what = `${policy.kind} ${policy.namespace}/${policy.name}`;
      errors.push(new PolicyError(file, line, 'metadata.name', `duplicate ${what} (first defined at line ${first})`));
      continue;
    }
    seen.set(key, policy.source.line);
    out.push(policy);
  }
  if (errors.length > 0) {
    errors.sort((a, b) => a.line - b.line); // stable: same-line errors keep document order
    throw new LocatedErrors(errors);
  }
  return out;
}

/**
 * Reads and parses a policy file (see parsePolicyText).
 * @throws Error `read FILE: detail` when the file cannot be read; LocatedErrors for its content.
 */
export async function parsePolicyFile(path: string): Promise<PolicyDocument[]> {
  return parsePolicyText(await readInputFile(path), path);
}

/** One document: dispatch on kind, validate, normalize. Errors go to `errors`. */
function parseDocument(doc: LocatedDoc, file: string, errors: PolicyError[]): PolicyDocument | undefined {
  const fail = (path: (string | number)[], detail: string) =>
    void errors.push(new PolicyError(file, doc.lineOf(path), formatPath(path), detail));
  const value = doc.value;
  if (!isPlainObject(value)) {
    fail([], `a document must be a mapping with apiVersion, kind, metadata and spec, got ${typeOf(value)}`);
    return undefined;
  }
  const kind = value.kind;
  if (kind === undefined || kind === null) {
    fail(['kind'], 'required (supported: NetworkPolicy)');
    return undefined;
  }
  if (kind !== 'NetworkPolicy') {
    if (typeof kind !== 'string') fail(['kind'], `expected a string, got ${typeOf(kind)}`);
    else if (LATER_KINDS.has(kind)) fail(['kind'], `kind ${kind} is not supported yet`);
    else fail(['kind'], `unknown kind ${kind} (supported: NetworkPolicy)`);
    return undefined;
  }
  return parseNetworkPolicyDocument(doc, file, errors);
}

/** Kinds of policy that tcplane will read (DESIGN.md) but does not yet. */
export const POLICY_KINDS_NOT_YET: ReadonlySet<string> = new Set(['ClusterNetworkPolicy', 'AdminNetworkPolicy', 'BaselineAdminNetworkPolicy']);

/**
 * One document whose kind is NetworkPolicy: validate, normalize. Errors go to `errors`.
 * (A caller reading several kinds dispatches on `kind` first.)
 */
export function parseNetworkPolicyDocument(doc: LocatedDoc, file: string, errors: LocatedError[]): NetworkPolicy | undefined {
  const parsed = networkPolicySchema.safeParse(doc.value, { error: describeIssue });
  if (!parsed.success) {
    errors.push(...zodIssuesToErrors(parsed.error.issues, atKeys(doc), file, (...a) => new PolicyError(...a)));
    return undefined;
  }
  const { metadata, spec } = parsed.data;
  return {
    kind: 'NetworkPolicy',
    apiVersion: NP_API,
    namespace: metadata.namespace ?? 'default',
    name: metadata.name,
    podSelector: selector(spec.podSelector),
    policyTypes: ['Ingress'],
    ingress: (spec.ingress ?? []).map(ingressRule),
    source: { file, line: doc.line },
  };
}

// ---- normalization (input already validated) ----

type SelectorIn = z.output<typeof labelSelectorSchema>;
type RuleIn = z.output<typeof ingressRuleSchema>;

function selector(s: SelectorIn): LabelSelector {
  return { matchLabels: s.matchLabels ?? {} };
}

function ingressRule(r: RuleIn): IngressRule {
  const rule: IngressRule = {};
  if (r.from && r.from.length > 0) {
    rule.from = r.from.map((p) => {
      const peer: PolicyPeer = {};
      if (p.podSelector) peer.podSelector = selector(p.podSelector);
      if (p.namespaceSelector) peer.namespaceSelector = selector(p.namespaceSelector);
      return peer;
    });
  }
  if (r.ports && r.ports.length > 0) {
    rule.ports = r.ports.map((p) => {
      const port: PolicyPort = { protocol: p.protocol };
      if (p.port !== undefined) port.port = p.port;
      return port;
    });
  }
  return rule;
}

// ---- schemas ----
// Optional fields accept null as absent (`ingress:` with nothing after it), as the
// Kubernetes API does.

const labelSelectorShape = {
  matchLabels: labelMap.nullish(),
  matchExpressions: notSupportedYet('matchExpressions is not supported yet (use matchLabels)'),
};
const labelSelectorSchema = z.strictObject(labelSelectorShape);

const peerSchema = z
  .strictObject({
    podSelector: labelSelectorSchema.nullish(),
    namespaceSelector: labelSelectorSchema.nullish(),
    ipBlock: notSupportedYet('ipBlock peers are not supported yet'),
  })
  .superRefine((p, ctx) => {
    if (!p.podSelector && !p.namespaceSelector) {
      ctx.addIssue({ code: 'custom', message: 'a peer needs podSelector or namespaceSelector (or both)' });
    }
  });

const protocolSchema = checked((v) => {
  if (v == null || v === 'TCP') return 'TCP' as const;
  if (v === 'UDP') return 'UDP' as const;
  if (v === 'SCTP') return new Reject('protocol SCTP is not supported yet');
  return new Reject(`unknown protocol ${JSON.stringify(v)} (supported: TCP, UDP)`);
});

const portNumberSchema = checked((v) => {
  if (v == null) return undefined;
  if (typeof v === 'string') return new Reject(`named port ${JSON.stringify(v)} is not supported yet (use the port number)`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    return new Reject(`must be an integer from 1 to 65535, got ${JSON.stringify(v)}`);
  }
  return v;
});

const portSchema = z.strictObject({
  protocol: protocolSchema,
  port: portNumberSchema,
  endPort: notSupportedYet('endPort (port ranges) is not supported yet'),
});

const ingressRuleSchema = z.strictObject({
  from: z.array(peerSchema).nullish(),
  ports: z.array(portSchema).nullish(),
});

const policyTypeSchema = checked((v) => {
  if (v === 'Ingress') return v;
  if (v === 'Egress') return new Reject('policy type Egress is not supported yet');
  return new Reject(`unknown policy type ${JSON.stringify(v)} (supported: Ingress)`);
});

const networkPolicySchema = z.strictObject({
  apiVersion: apiVersionSchema(NP_API, 'NetworkPolicy'),
  kind: z.literal('NetworkPolicy'),
  metadata: metadataSchema(validateDns1123Subdomain),
  spec: z.strictObject({
    podSelector: z.strictObject(labelSelectorShape, {
      error: (iss) => (iss.input == null ? 'required (use {} to select every pod in the namespace)' : undefined),
    }),
    // Kubernetes defaults policyTypes to [Ingress] (+ Egress with spec.egress); v0 always ends up with [Ingress].
    policyTypes: z.array(policyTypeSchema).nullish(),
    ingress: z.array(ingressRuleSchema).nullish(),
    egress: notSupportedYet('egress is not supported yet (v0 enforces ingress only)'),
  }),
});
