/**
 * Multi-document YAML with positions: every error a user sees names the file, the line
 * and the field (`policies/a.yaml:12: spec.ingress[0].ports[1].port: ...`).
 */
import { LineCounter, parseAllDocuments, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';

export type FieldPath = readonly (string | number)[];

/** An input error located in a file. Subclasses name the input kind (PolicyError, LabSpecError). */
export class LocatedError extends Error {
  override name = 'LocatedError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${field ? `${field}: ` : ''}${detail}`);
  }
}

/** Several located errors at once: a file with any error applies nothing. */
export class LocatedErrors extends Error {
  override name = 'LocatedErrors';
  constructor(readonly errors: LocatedError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

/** Reads an input file; a failure reads `read FILE: detail`, distinct from the file's content errors. */
export async function readInputFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export function formatPath(path: FieldPath): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

export interface LocatedDoc {
  /** 0-based position of the document in the file. */
  readonly index: number;
  /** The document as plain data. */
  readonly value: unknown;
  /** 1-based line where the document starts. */
  readonly line: number;
  /** Line of the value at path, or of its deepest existing ancestor. */
  lineOf(path: FieldPath): number;
  /** Line of the key at path (for "unknown field" errors), else as lineOf. */
  keyLineOf(path: FieldPath): number;
}

/** Parses every document; syntax errors come back located, never thrown. Empty documents are skipped. */
export function parseYamlDocuments(text: string, file: string): { docs: LocatedDoc[]; errors: LocatedError[] } {
  const lc = new LineCounter();
  const all = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const docs: LocatedDoc[] = [];
  const errors: LocatedError[] = [];
  const list = Array.isArray(all) ? all : [];
  const lineAt = (offset: number) => lc.linePos(offset).line;
  list.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        errors.push(new LocatedError(file, lineAt(e.pos[0]), '', `YAML: ${firstLine(e.message)}`));
      }
      return;
    }
    let located: LocatedDoc;
    try {
      located = locatedDoc(doc, index, lineAt);
    } catch (err) {
      // toJS refuses alias expansion beyond maxAliasCount (a "billion laughs" document).
      const start = (doc.contents as Node | null)?.range?.[0] ?? 0;
      errors.push(new LocatedError(file, lineAt(start), '', `YAML: ${firstLine((err as Error).message)}`));
      return;
    }
    // `---` with nothing after it, or only comments: the library yields a null scalar.
    if (located.value === null || located.value === undefined) return;
    docs.push(located);
  });
  return { docs, errors };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function locatedDoc(doc: Document, index: number, lineAt: (o: number) => number): LocatedDoc {
  const root = doc.contents as Node | null;
  const startLine = root?.range ? lineAt(root.range[0]) : 1;
  const walk = (path: FieldPath, wantKey: boolean): number => {
    let node: unknown = root;
    let line = startLine;
    for (let i = 0; i < path.length; i++) {
      const step = path[i]!;
      if (isMap(node)) {
        const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(step));
        if (!pair) return line;
        const keyNode = pair.key as Node;
        if (keyNode.range) line = lineAt(keyNode.range[0]);
        if (wantKey && i === path.length - 1) return line;
        node = pair.value;
      } else if (isSeq(node) && typeof step === 'number') {
        node = node.items[step];
      } else {
        return line;
      }
      const n = node as Node | null;
      if (n?.range) line = lineAt(n.range[0]);
    }
    return line;
  };
  return {
    index,
    value: doc.toJS({ maxAliasCount: 100 }),
    line: startLine,
    lineOf: (p) => walk(p, false),
    keyLineOf: (p) => walk(p, true),
  };
}

/**
 * Turns zod issues into located errors. An unrecognized key is located at the key itself
 * and named by its full path.
 */
export function zodIssuesToErrors<E extends LocatedError>(
  issues: readonly z.core.$ZodIssue[],
  doc: LocatedDoc,
  file: string,
  make: (file: string, line: number, field: string, detail: string) => E,
  basePath: FieldPath = [],
): E[] {
  const out: E[] = [];
  for (const issue of issues) {
    const path = [...basePath, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const full = [...path, key];
        out.push(make(file, doc.keyLineOf(full), formatPath(full), 'unknown field'));
      }
      continue;
    }
    out.push(make(file, doc.lineOf(path), formatPath(path), issue.message));
  }
  return out;
}
