/**
 * Label selectors. The syntax of the names they use lives in src/yaml/names.ts (a leaf,
 * shared with the schema helpers and the other parsers) and is re-exported here.
 */
import type { LabelSelector } from './types.js';

export {
  validateDns1035Label,
  validateDns1123Label,
  validateDns1123Subdomain,
  validateIanaServiceName,
  validateLabelKey,
  validateLabelValue,
} from '../yaml/names.js';

/**
 * True when `labels` holds every pair of `sel.matchLabels` and meets every requirement of
 * `sel.matchExpressions` (Kubernetes' label selector: In needs the key with one of the
 * values, NotIn is met by a missing key or another value, Exists needs the key,
 * DoesNotExist its absence). `{}` selects everything.
 */
export function matchesSelector(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(sel.matchLabels)) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  for (const req of sel.matchExpressions) {
    const has = Object.hasOwn(labels, req.key);
    const met =
      req.operator === 'In'
        ? has && req.values.includes(labels[req.key]!)
        : req.operator === 'NotIn'
          ? !has || !req.values.includes(labels[req.key]!)
          : req.operator === 'Exists'
            ? has
            : !has;
    if (!met) return false;
  }
  return true;
}
