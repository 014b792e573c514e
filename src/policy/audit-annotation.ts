/**
 * Audit mode, per policy: the annotation `tcplane.io/audit: "true"` (any kind). What an
 * audited policy would drop passes and is reported as audited (src/policy/compile.ts
 * says how that is resolved); `"false"` or no annotation: enforced. Per namespace, the
 * label of the same name on the namespace audits every policy for its pods.
 */
import type { LocatedDoc } from '../yaml/located.js';
import { PolicyError } from './errors.js';

export const AUDIT_KEY = 'tcplane.io/audit';

/** `{ audit: true }` for an audited document, `{}` for an enforced one, undefined (and an error) for a bad value. */
export function auditOf(
  annotations: Readonly<Record<string, string>> | null | undefined,
  doc: LocatedDoc,
  file: string,
  errors: PolicyError[] | { push(e: PolicyError): unknown },
): { audit?: true } | undefined {
  const v = annotations?.[AUDIT_KEY];
  if (v === undefined || v === 'false') return {};
  if (v === 'true') return { audit: true };
  errors.push(new PolicyError(file, doc.lineOf(['metadata', 'annotations', AUDIT_KEY]), `metadata.annotations.${AUDIT_KEY}`, `must be "true" or "false", got ${JSON.stringify(v)}`));
  return undefined;
}

/** Whether a namespace's labels put its pods' policies in audit mode. */
export const namespaceAudited = (labels: Readonly<Record<string, string>>) => labels[AUDIT_KEY] === 'true';
