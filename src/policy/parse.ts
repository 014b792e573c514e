/**
 * Policy files → the normalized model (types.ts). Multi-document YAML; each document is
 * validated with a strict zod schema, so a misspelt field is an error and never a rule
 * silently dropped. Whatever Kubernetes accepts but tcplane cannot enforce yet is
 * rejected as "not supported yet" at the field that uses it: a
 * policy enforced with part of its meaning missing would be a security hole. Kubernetes'
 * own validation (selector operators and values, endPort after a numeric port, an
 * ipBlock alone in its peer with each except strictly inside its cidr) is checked here
 * too, with the same meaning.
 *
 * Every error of every document is collected and thrown at once as `LocatedErrors` of
 * `PolicyError`s (`FILE:LINE: field.path: detail`), sorted by line.
 */
import { auditOf } from './audit-annotation.js';
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
import { validateDns1123Subdomain, validateIanaServiceName } from '../yaml/names.js';
import {
  Reject,
  apiVersionSchema,
  atKeys,
  checked,
  describeIssue,
  isPlainObject,
  keyOf,
  labelMap,
  labelValue,
  metadataSchema,
  typeOf,
} from '../yaml/schema-helpers.js';
import { PolicyError } from './errors.js';
import { CLUSTER_KINDS, parseClusterPolicyDocument, type ClusterKind } from './parse-cluster.js';
import { cidrSchema, labelSelectorSchema, labelSelectorShape, portNumber, protocolSchema, selector } from './schema-parts.js';
import { parsePrefix, prefixContains, prefixString } from './prefix.js';
import type { EgressRule, IngressRule, LabelSelector, NetworkPolicy, PolicyDocument, PolicyPeer, PolicyPort, PolicyType } from './types.js';

const NP_API = 'networking.k8s.io/v1';
/** Kinds `apply` reads that are no policy (the CLI's manifest reader, src/cli/manifest.ts, takes them). */
const LATER_KINDS = new Set(['Service']);

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
      const what = `${policy.kind} ${policy.namespace ? `${policy.namespace}/` : ''}${policy.name}`;
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

/** The policy kinds `apply` reads. */
export const POLICY_KINDS: readonly string[] = ['NetworkPolicy', ...CLUSTER_KINDS];

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
    fail(['kind'], `required (supported: ${POLICY_KINDS.join(', ')})`);
    return undefined;
  }
  if (typeof kind === 'string' && POLICY_KINDS.includes(kind)) return parsePolicyDocument(kind, doc, file, errors);
  if (typeof kind !== 'string') fail(['kind'], `expected a string, got ${typeOf(kind)}`);
  else if (LATER_KINDS.has(kind)) fail(['kind'], `kind ${kind} is not supported yet`);
  else fail(['kind'], `unknown kind ${kind} (supported: ${POLICY_KINDS.join(', ')})`);
  return undefined;
}

/** One document of a policy kind (POLICY_KINDS): validate, normalize. Errors go to `errors`. */
export function parsePolicyDocument(kind: string, doc: LocatedDoc, file: string, errors: LocatedError[]): PolicyDocument | undefined {
  if ((CLUSTER_KINDS as readonly string[]).includes(kind)) return parseClusterPolicyDocument(kind as ClusterKind, doc, file, errors);
  return parseNetworkPolicyDocument(doc, file, errors);
}

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
  const audit = auditOf(metadata.annotations, doc, file, errors);
  if (!audit) return undefined;
  const ingress = (spec.ingress ?? []).map(ingressRule);
  const egress = (spec.egress ?? []).map(egressRule);
  return {
    kind: 'NetworkPolicy',
    apiVersion: NP_API,
    namespace: metadata.namespace ?? 'default',
    name: metadata.name,
    podSelector: selector(spec.podSelector),
    policyTypes: policyTypes(spec.policyTypes, egress.length > 0),
    ingress,
    egress,
    ...audit,
    source: { file, line: doc.line },
  };
}

// ---- normalization (input already validated) ----

type PeerIn = z.output<typeof peerSchema>;
type PortIn = z.output<ReturnType<typeof portSchema>>;

/** Kubernetes' defaulting: without policyTypes, Ingress, and Egress too when there is an egress rule. */
function policyTypes(given: PolicyType[] | null | undefined, hasEgressRules: boolean): PolicyType[] {
  if (given && given.length > 0) return (['Ingress', 'Egress'] as const).filter((t) => given.includes(t));
  return hasEgressRules ? ['Ingress', 'Egress'] : ['Ingress'];
}

function peers(list: PeerIn[] | null | undefined): PolicyPeer[] | undefined {
  if (!list || list.length === 0) return undefined;
  return list.map((p) => {
    const peer: PolicyPeer = {};
    if (p.ipBlock) peer.ipBlock = { cidr: prefixString(p.ipBlock.cidr), except: (p.ipBlock.except ?? []).map(prefixString) };
    if (p.podSelector) peer.podSelector = selector(p.podSelector);
    if (p.namespaceSelector) peer.namespaceSelector = selector(p.namespaceSelector);
    return peer;
  });
}

function ports(list: PortIn[] | null | undefined): PolicyPort[] | undefined {
  if (!list || list.length === 0) return undefined;
  return list.map((p) => {
    const port: PolicyPort = { protocol: p.protocol };
    if (p.port !== undefined) port.port = p.port;
    if (p.endPort !== undefined) port.endPort = p.endPort;
    return port;
  });
}

/** A rule's peers under `key` (from, to) and its ports; absent ones stay absent (all). */
function ruleOf<K extends 'from' | 'to'>(key: K, peerList: PeerIn[] | null | undefined, portList: PortIn[] | null | undefined) {
  const rule: Partial<Record<K, PolicyPeer[]>> & { ports?: PolicyPort[] } = {};
  const ps = peers(peerList);
  const p = ports(portList);
  if (ps) rule[key] = ps as (typeof rule)[K];
  if (p) rule.ports = p;
  return rule;
}

const ingressRule = (r: z.output<typeof ingressRuleSchema>): IngressRule => ruleOf('from', r.from, r.ports);
const egressRule = (r: z.output<typeof egressRuleSchema>): EgressRule => ruleOf('to', r.to, r.ports);

// ---- schemas ----
// Optional fields accept null as absent (`ingress:` with nothing after it), as the
// Kubernetes API does.

/** Kubernetes' rule: every except lies strictly inside cidr (so in its family too). */
const ipBlockSchema = z
  .strictObject({
    cidr: cidrSchema,
    except: z.array(cidrSchema).nullish(),
  })
  .superRefine((b, ctx) => {
    (b.except ?? []).forEach((e, i) => {
      if (!prefixContains(b.cidr, e) || e.len === b.cidr.len) {
        ctx.addIssue({ code: 'custom', path: ['except', i], message: `${prefixString(e)} is not strictly inside cidr ${prefixString(b.cidr)}` });
      }
    });
  });

const peerSchema = z
  .strictObject({
    podSelector: labelSelectorSchema.nullish(),
    namespaceSelector: labelSelectorSchema.nullish(),
    ipBlock: ipBlockSchema.nullish(),
  })
  .superRefine((p, ctx) => {
    if (p.ipBlock && (p.podSelector || p.namespaceSelector)) {
      ctx.addIssue({ code: 'custom', path: ['ipBlock'], message: 'an ipBlock peer takes no podSelector or namespaceSelector (use separate peers)' });
    } else if (!p.ipBlock && !p.podSelector && !p.namespaceSelector) {
      ctx.addIssue({ code: 'custom', message: 'a peer needs podSelector, namespaceSelector (or both), or ipBlock' });
    }
  });

/** A port number, or the name of a port the destination pod declares. */
const portSchema = () =>
  z
    .strictObject({
      protocol: protocolSchema,
      port: checked((v) => {
        if (v == null) return undefined;
        if (typeof v === 'string') {
          const bad = validateIanaServiceName(v);
          return bad ? new Reject(`invalid port name ${JSON.stringify(v)}: ${bad}`) : v;
        }
        return portNumber(v);
      }),
      endPort: checked((v) => (v == null ? undefined : portNumber(v))),
    })
    .superRefine((p, ctx) => {
      if (p.endPort === undefined) return;
      if (typeof p.port !== 'number') {
        const why = p.port === undefined ? 'needs port' : 'needs a numeric port, not a named one';
        ctx.addIssue({ code: 'custom', path: ['endPort'], message: `endPort ${why}` });
      } else if (p.endPort < p.port) {
        ctx.addIssue({ code: 'custom', path: ['endPort'], message: `endPort ${p.endPort} is below port ${p.port}` });
      }
    });

const ingressRuleSchema = z.strictObject({
  from: z.array(peerSchema).nullish(),
  ports: z.array(portSchema()).nullish(),
});

const egressRuleSchema = z.strictObject({
  to: z.array(peerSchema).nullish(),
  ports: z.array(portSchema()).nullish(),
});

const policyTypeSchema = checked((v) => {
  if (v === 'Ingress' || v === 'Egress') return v;
  return new Reject(`unknown policy type ${JSON.stringify(v)} (supported: Ingress, Egress)`);
});

const networkPolicySchema = z.strictObject({
  apiVersion: apiVersionSchema(NP_API, 'NetworkPolicy'),
  kind: z.literal('NetworkPolicy'),
  metadata: metadataSchema(validateDns1123Subdomain),
  spec: z.strictObject({
    podSelector: z.strictObject(labelSelectorShape, {
      error: (iss) => (iss.input == null ? 'required (use {} to select every pod in the namespace)' : undefined),
    }),
    policyTypes: z.array(policyTypeSchema).nullish(),
    ingress: z.array(ingressRuleSchema).nullish(),
    egress: z.array(egressRuleSchema).nullish(),
  }),
});
