/**
 * Pieces every Kubernetes-style input schema shares (policies, services): fields checked
 * by hand with `checked`/`Reject`, strings whose syntax a validator checks, label and
 * annotation maps, object metadata, zod messages in YAML words, and error placement on
 * the key's line. The parsers build their strict zod schemas from these, so a misspelt
 * field is an error everywhere and every error reads the same way.
 *
 * Optional fields accept null as absent (`ingress:` with nothing after it), as the
 * Kubernetes API does.
 */
import { z } from 'zod';
import type { FieldPath, LocatedDoc } from './located.js';
import { validateDns1123Label, validateLabelKey, validateLabelValue } from './names.js';

/** Why a hand-checked field is invalid (see `checked`). */
export class Reject {
  constructor(readonly detail: string) {}
}

/** A field checked by hand: `check` returns the normalized value or a Reject naming the problem. */
export function checked<T>(check: (v: unknown) => T | Reject) {
  // optional(): an absent key reaches `check` as undefined instead of failing as "required".
  return z.unknown().optional().transform((v, ctx): T => {
    const r = check(v);
    if (r instanceof Reject) {
      ctx.addIssue({ code: 'custom', message: r.detail });
      return z.NEVER;
    }
    return r;
  });
}

/**
 * A field tcplane cannot honour yet: unset is fine, anything else is an error (never a
 * meaning silently dropped). Unset is absent or null, unless `unset` says more.
 */
export const notSupportedYet = (detail: string, unset: (v: unknown) => boolean = (v) => v == null) =>
  checked((v) => (unset(v) ? undefined : new Reject(detail)));

/** A string whose syntax `validate` checks. */
export const syntax = (validate: (s: string) => string | undefined) =>
  z.string().superRefine((s, ctx) => {
    const bad = validate(s);
    if (bad) ctx.addIssue({ code: 'custom', message: bad });
  });

/** Label and annotation keys share the qualified-name syntax. */
export const keyOf = (what: string) =>
  syntax((s) => {
    const bad = validateLabelKey(s);
    return bad && `invalid ${what} key ${JSON.stringify(s)}: ${bad}`;
  });

/** Label values are strings; YAML reads `version: 2` as a number, so say how to fix it. */
export const labelValue = z
  .string({
    error: (iss) =>
      typeof iss.input === 'number' || typeof iss.input === 'boolean'
        ? `label values are strings: quote it ("${String(iss.input)}")`
        : undefined,
  })
  .superRefine((s, ctx) => {
    const bad = validateLabelValue(s);
    if (bad) ctx.addIssue({ code: 'custom', message: `invalid label value: ${bad}` });
  });

export const labelMap = z.record(keyOf('label'), labelValue);

/**
 * Object metadata. `validateName` is the kind's name syntax (a DNS-1123 subdomain for
 * most kinds, a DNS-1035 label for a Service); namespaces are DNS-1123 labels.
 */
export const metadataSchema = (validateName: (s: string) => string | undefined) =>
  z.strictObject({
    name: syntax(validateName),
    namespace: syntax(validateDns1123Label).nullish(),
    labels: labelMap.nullish(),
    annotations: z.record(keyOf('annotation'), z.string()).nullish(),
    // Set by the API server; present in `kubectl get -o yaml` output. Accepted, ignored.
    uid: z.unknown().optional(),
    resourceVersion: z.unknown().optional(),
    generation: z.unknown().optional(),
    creationTimestamp: z.unknown().optional(),
    managedFields: z.unknown().optional(),
  });

/** `apiVersion` of a kind: required, and exactly `api`. */
export const apiVersionSchema = <A extends string>(api: A, kind: string) =>
  checked((v): A | Reject =>
    v === api ? api : new Reject(v == null ? `required (${api})` : `expected ${api} for kind ${kind}, got ${JSON.stringify(v)}`),
  );

/** Parse-level zod messages, in YAML words; schema-level messages take precedence. */
export function describeIssue(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required';
      return `expected ${TYPE_NAMES[iss.expected] ?? iss.expected}, got ${typeOf(iss.input)}`;
    case 'invalid_key':
      return iss.issues.map((i) => i.message).join('; ');
    default:
      return undefined;
  }
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
};

/** A value as an error message names it: `a list`, `a mapping`, `null`, `number 2`. */
export function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The document with errors placed on the line of the field's key, where a reader looks
 * for "spec.egress", rather than where its value starts (a block value starts a line
 * below); a missing field is placed on its parent's key.
 */
export function atKeys(doc: LocatedDoc): LocatedDoc {
  const exists = (path: FieldPath) => {
    let v = doc.value;
    for (const step of path) {
      if (typeof v !== 'object' || v === null || !Object.hasOwn(v, step)) return false;
      v = (v as Record<string | number, unknown>)[step];
    }
    return true;
  };
  return { ...doc, lineOf: (path) => doc.keyLineOf(exists(path) ? path : path.slice(0, -1)) };
}
