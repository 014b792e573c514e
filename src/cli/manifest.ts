/**
 * Reading what `apply -f` and `delete -f` are given: files (or directories of them, as
 * kubectl reads them) of multi-document YAML mixing every kind tcplane reads. Each
 * document goes to its kind's parser; every error of every file is collected, and any
 * error means nothing is applied. Each document keeps its position in its file, so a
 * problem found later (an allocation refused by the store) still names file, line and field.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePolicyDocument, POLICY_KINDS } from '../policy/parse.js';
import { PolicyError } from '../policy/errors.js';
import type { PolicyDocument } from '../policy/types.js';
import { parseServiceDocument } from '../services/parse.js';
import type { Service } from '../services/types.js';
import { policyKey, podKey } from '../store/schema.js';
import { LocatedError, LocatedErrors, formatPath, parseYamlDocuments, readInputFile, type FieldPath, type LocatedDoc } from '../yaml/located.js';

export type Manifest =
  | { kind: 'policy'; doc: PolicyDocument; located: LocatedDoc; file: string }
  | { kind: 'service'; doc: Service; located: LocatedDoc; file: string };

const SUPPORTED = [...POLICY_KINDS, 'Service'].join(', ');

/** `networkpolicy/x/allow-web`, `service/x/web`: how the CLI names what it changed. */
export function displayName(d: { kind: string; namespace?: string; name: string }): string {
  return `${d.kind.toLowerCase()}/${d.namespace ? `${d.namespace}/` : ''}${d.name}`;
}

/** The store key of a manifest's document (in tcplane-policies or tcplane-services). */
export function storeKey(m: Manifest): string {
  return m.kind === 'policy' ? policyKey(m.doc.kind, m.doc.namespace, m.doc.name) : podKey(m.doc.namespace, m.doc.name);
}

/** An error about a field of a manifest found after parsing; the first of `paths` present in the document names it. */
export function fieldError(m: Manifest, paths: FieldPath[], detail: string): LocatedError {
  const present = paths.find((p) => hasPath(m.located.value, p)) ?? paths[0]!;
  return new LocatedError(m.file, m.located.keyLineOf(present), formatPath(present), detail);
}

function hasPath(v: unknown, path: FieldPath): boolean {
  for (const step of path) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, step)) return false;
    v = (v as Record<string | number, unknown>)[step];
  }
  return true;
}

/** Every document of one file's text. @throws LocatedErrors of every problem in it. */
export function parseManifestText(text: string, file: string): Manifest[] {
  const { docs, errors: yamlErrors } = parseYamlDocuments(text, file);
  const errors: LocatedError[] = [...yamlErrors];
  const out: Manifest[] = [];
  for (const located of docs) {
    const fail = (path: FieldPath, detail: string) => void errors.push(new PolicyError(file, located.keyLineOf(path), formatPath(path), detail));
    const value = located.value as Record<string, unknown> | null;
    const kind = typeof value === 'object' && value !== null && !Array.isArray(value) ? value.kind : undefined;
    if (kind === 'Service') {
      const svc = parseServiceDocument(located, file, errors);
      if (svc) out.push({ kind: 'service', doc: svc, located, file });
    } else if (typeof kind === 'string' && POLICY_KINDS.includes(kind)) {
      const doc = parsePolicyDocument(kind, located, file, errors);
      if (doc) out.push({ kind: 'policy', doc, located, file });
    } else if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      fail([], 'a document must be a mapping with apiVersion, kind, metadata and spec');
    } else if (kind === undefined || kind === null) {
      fail(['kind'], `required (supported: ${SUPPORTED})`);
    } else if (typeof kind !== 'string') {
      fail(['kind'], `expected a string, got ${JSON.stringify(kind)}`);
    } else {
      fail(['kind'], `unknown kind ${kind} (supported: ${SUPPORTED})`);
    }
  }
  if (errors.length > 0) {
    errors.sort((a, b) => a.line - b.line);
    throw new LocatedErrors(errors);
  }
  return out;
}

/** -f arguments to files: a directory stands for its *.yaml, *.yml and *.json files (not recursive, sorted), as with kubectl. */
async function expandFiles(args: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of args) {
    const st = await stat(a).catch(() => null);
    if (!st?.isDirectory()) {
      out.push(a); // a missing file is reported by the reader, naming it
      continue;
    }
    const names = (await readdir(a)).filter((n) => /\.(ya?ml|json)$/.test(n)).sort();
    if (names.length === 0) throw new Error(`${a}: no .yaml, .yml or .json files in this directory\nnothing applied`);
    out.push(...names.map((n) => join(a, n)));
  }
  return out;
}

/**
 * Every document of every file named by `args`.
 * @throws Error listing every problem of every file, ending "nothing applied".
 */
export async function readManifests(args: string[]): Promise<Manifest[]> {
  const files = await expandFiles(args);
  const docs: Manifest[] = [];
  const problems: string[] = [];
  for (const f of files) {
    try {
      docs.push(...parseManifestText(await readInputFile(f), f));
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length) throw new Error(`${problems.join('\n')}\nnothing applied`);
  const seen = new Map<string, Manifest>();
  for (const m of docs) {
    const key = `${m.doc.kind}/${m.doc.namespace}/${m.doc.name}`;
    const first = seen.get(key);
    if (first) {
      throw new Error(
        `${m.file}:${m.located.line}: ${m.doc.kind} ${m.doc.namespace}/${m.doc.name} is also defined at ${first.file}:${first.located.line}\nnothing applied`,
      );
    }
    seen.set(key, m);
  }
  return docs;
}
