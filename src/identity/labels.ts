/**
 * Security identity labels: what makes two pods equivalent for policy. As in Cilium, a
 * pod's identity covers its namespace, its own labels and its namespace's labels, so
 * every selector (podSelector, namespaceSelector, both) can be evaluated on the
 * identity alone, and relabelling a pod or a namespace moves pods to another identity.
 */
import { createHash } from 'node:crypto';

export interface IdentityLabels {
  namespace: string;
  pod: Record<string, string>;
  namespaceLabels: Record<string, string>;
}

function sorted(labels: Record<string, string>): [string, string][] {
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** One string per label set, independent of key order. */
export function canonicalLabels(l: IdentityLabels): string {
  return JSON.stringify([l.namespace, sorted(l.pod), sorted(l.namespaceLabels)]);
}

/** KV-safe key naming a label set (sha256 of the canonical form). */
export function labelsDigest(l: IdentityLabels): string {
  return createHash('sha256').update(canonicalLabels(l)).digest('hex');
}

/** Human-readable form: `ns=x pod:app=web nsl:team=a`. */
export function describeLabels(l: IdentityLabels): string {
  const p = sorted(l.pod).map(([k, v]) => `${k}=${v}`);
  return [`ns=${l.namespace}`, ...p].join(' ');
}
