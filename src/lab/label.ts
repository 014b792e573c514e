/**
 * `lab label pod NS/POD KEY=VALUE… [KEY-]`, `lab label namespace NS …` and `lab label node
 * NODE …`: change labels at run time by rewriting the record in the store, as `kubectl
 * label` does through the API server. Agents react to the store; this only writes.
 */
import { validateLabelKey, validateLabelValue } from '../policy/selector.js';
import { HOSTNAME_LABEL, namespaceRecord, nodeRecord, podRecord } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { METADATA_NAME_LABEL } from './spec.js';

export interface LabelChanges {
  set: Record<string, string>;
  remove: string[];
}

/**
 * Parses `KEY=VALUE` (set; VALUE may be empty) and `KEY-` (remove) arguments with
 * Kubernetes label syntax.
 * @throws Error `lab label: …` naming the bad argument.
 */
export function parseLabelChanges(args: readonly string[]): LabelChanges {
  if (args.length === 0) throw new Error('lab label: give at least one KEY=VALUE or KEY-');
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq >= 0 ? arg.slice(0, eq) : arg.endsWith('-') ? arg.slice(0, -1) : undefined;
    if (key === undefined) throw new Error(`lab label: ${JSON.stringify(arg)}: expected KEY=VALUE or KEY-`);
    const badKey = validateLabelKey(key);
    if (badKey) throw new Error(`lab label: ${JSON.stringify(arg)}: invalid label key: ${badKey}`);
    if (Object.hasOwn(set, key) || remove.includes(key)) throw new Error(`lab label: label ${key} is given twice`);
    if (eq < 0) {
      remove.push(key);
      continue;
    }
    const value = arg.slice(eq + 1);
    const badValue = validateLabelValue(value);
    if (badValue) throw new Error(`lab label: ${JSON.stringify(arg)}: invalid label value: ${badValue}`);
    set[key] = value;
  }
  return { set, remove };
}

/** The labels after the changes (removing an absent key is not an error, as in kubectl). */
export function applyLabelChanges(labels: Readonly<Record<string, string>>, ch: LabelChanges): Record<string, string> {
  const out: Record<string, string> = { ...labels, ...ch.set };
  for (const k of ch.remove) delete out[k];
  return out;
}

/**
 * Rewrites the labels of pod `ns/name` in tcplane-pods.
 * @returns the new labels and the record's revision.
 */
export async function labelPod(store: Store, key: string, ch: LabelChanges): Promise<{ labels: Record<string, string>; revision: number }> {
  const cur = await store.get('pods', key, podRecord);
  if (!cur) throw new Error(`lab label: no pod ${key} in the lab`);
  const record = podRecord.parse({ ...cur.value, labels: applyLabelChanges(cur.value.labels, ch) });
  return { labels: record.labels, revision: await store.put('pods', key, record) };
}

/**
 * Rewrites the labels of namespace `name` in tcplane-namespaces. The
 * `kubernetes.io/metadata.name` label is immutable, as in Kubernetes.
 */
export async function labelNamespace(store: Store, name: string, ch: LabelChanges): Promise<{ labels: Record<string, string>; revision: number }> {
  if (ch.remove.includes(METADATA_NAME_LABEL) || (Object.hasOwn(ch.set, METADATA_NAME_LABEL) && ch.set[METADATA_NAME_LABEL] !== name)) {
    throw new Error(`lab label: ${METADATA_NAME_LABEL} is set by the cluster to the namespace's name and cannot change`);
  }
  const cur = await store.get('namespaces', name, namespaceRecord);
  if (!cur) throw new Error(`lab label: no namespace ${name} in the lab`);
  const record = namespaceRecord.parse({ ...cur.value, labels: applyLabelChanges(cur.value.labels, ch) });
  return { labels: record.labels, revision: await store.put('namespaces', name, record) };
}

/**
 * Rewrites the labels of node `name` in tcplane-nodes (its agent keeps them across
 * restarts). `kubernetes.io/hostname` is the node's name and cannot change here.
 */
export async function labelNode(store: Store, name: string, ch: LabelChanges): Promise<{ labels: Record<string, string>; revision: number }> {
  if (ch.remove.includes(HOSTNAME_LABEL) || (Object.hasOwn(ch.set, HOSTNAME_LABEL) && ch.set[HOSTNAME_LABEL] !== name)) {
    throw new Error(`lab label: ${HOSTNAME_LABEL} is the node's name and cannot change`);
  }
  const cur = await store.get('nodes', name, nodeRecord);
  if (!cur) throw new Error(`lab label: no node ${name} has registered (is its agent running?)`);
  const labels = applyLabelChanges(cur.value.labels ?? { [HOSTNAME_LABEL]: name }, ch);
  return { labels, revision: await store.put('nodes', name, nodeRecord.parse({ ...cur.value, labels })) };
}
