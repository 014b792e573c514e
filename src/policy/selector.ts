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
 * True when `labels` holds every pair of `sel.matchLabels` (v0 has no matchExpressions).
 * `{matchLabels: {}}` selects everything.
 */
export function matchesSelector(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(sel.matchLabels)) {
    if (!Object.hasOwn(labels, key) || labels[key] !== value) return false;
  }
  return true;
}
