/**
 * `tcplane apply -f`, `delete -f`, `get policies|endpoints|nodes|services`.
 *
 * apply and delete validate every document of every file before touching the store: a
 * file with any error applies nothing and names file, line and field. `--wait` returns
 * once every registered node reports the change enforced in its maps (the store
 * revision it has programmed), or fails after `--timeout` naming the nodes that lag.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { LocatedErrors } from '../yaml/located.js';
import { parsePolicyFile } from '../policy/parse.js';
import type { PolicyDocument } from '../policy/types.js';
import { endpointRecord, identityRecord, nodeRecord, policyKey, policyRecord, statusRecord, type PolicyRecord } from '../store/schema.js';
import { Store } from '../store/store.js';
import { labNatsUrl, LabNotUpError } from '../lab/state.js';
import { RESERVED_IDENTITY_NAMES } from '../datapath/constants.js';
import { printTable } from './table.js';

/** The store to talk to: --nats, then $TCPLANE_NATS, then the running lab's. */
export async function resolveNatsUrl(flag: string | undefined): Promise<string> {
  if (flag) return flag;
  if (process.env.TCPLANE_NATS) return process.env.TCPLANE_NATS;
  try {
    return await labNatsUrl();
  } catch (err) {
    if (err instanceof LabNotUpError) {
      throw new Error('no store to talk to: pass --nats URL, set TCPLANE_NATS, or start a lab (`tcplane lab up -f LAB.yaml`)');
    }
    throw err;
  }
}

async function withStore<T>(natsFlag: string | undefined, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await Store.connect(await resolveNatsUrl(natsFlag), { name: 'tcplane-cli' });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Parses every file; throws one error listing every problem in every file. */
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

async function parseAll(args: string[]): Promise<PolicyDocument[]> {
  const files = await expandFiles(args);
  const docs: PolicyDocument[] = [];
  const problems: string[] = [];
  for (const f of files) {
    try {
      docs.push(...(await parsePolicyFile(f)));
    } catch (err) {
      problems.push(err instanceof LocatedErrors ? err.message : (err as Error).message);
    }
  }
  if (problems.length) throw new Error(`${problems.join('\n')}\nnothing applied`);
  const seen = new Map<string, PolicyDocument>();
  for (const d of docs) {
    const key = policyKey(d.kind, d.namespace, d.name);
    const first = seen.get(key);
    if (first) {
      throw new Error(
        `${d.source.file}:${d.source.line}: ${d.kind} ${d.namespace}/${d.name} is also defined at ${first.source.file}:${first.source.line}\nnothing applied`,
      );
    }
    seen.set(key, d);
  }
  return docs;
}

function recordOf(d: PolicyDocument): PolicyRecord {
  return { v: 1, kind: d.kind, apiVersion: d.apiVersion, namespace: d.namespace, name: d.name, spec: d, source: d.source };
}

function displayName(d: { kind: string; namespace?: string; name: string }): string {
  return `${d.kind.toLowerCase()}/${d.namespace ? `${d.namespace}/` : ''}${d.name}`;
}

/** Same document, ignoring where it was read from. */
function sameSpec(a: unknown, b: PolicyDocument): boolean {
  const strip = (x: unknown) => JSON.stringify({ ...(x as object), source: undefined });
  return strip(a) === strip(b);
}

export interface WaitOptions {
  timeoutMs: number;
  /** Called with the nodes still lagging, at most once a second. */
  onProgress?: (lagging: string[]) => void;
}

/**
 * Waits until every registered node reports `bucket` enforced at `revision` or later.
 * Throws naming the lagging nodes (and how far each is) when the timeout passes.
 */
export async function waitForEnforcement(store: Store, bucket: 'policies', revision: number, o: WaitOptions): Promise<string[]> {
  const deadline = Date.now() + o.timeoutMs;
  let lastReport = 0;
  for (;;) {
    const nodes = [...(await store.list('nodes', nodeRecord)).entries.keys()].sort();
    const status = (await store.list('status', statusRecord)).entries;
    const lagging = nodes.filter((n) => (status.get(n)?.value.revisions[bucket] ?? 0) < revision);
    if (nodes.length > 0 && lagging.length === 0) return nodes;
    if (Date.now() >= deadline) {
      const detail =
        nodes.length === 0
          ? 'no node has registered an agent'
          : lagging
              .map((n) => {
                const s = status.get(n)?.value;
                return s ? `${n} (at revision ${s.revisions[bucket] ?? 0} of ${revision}, last report ${s.updatedAt})` : `${n} (no status)`;
              })
              .join(', ');
      throw new Error(`timed out after ${o.timeoutMs / 1000}s waiting for enforcement: ${detail}`);
    }
    if (o.onProgress && Date.now() - lastReport > 1000) {
      o.onProgress(lagging);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the store holds under a document's key, read before any change is sent. */
interface Current {
  doc: PolicyDocument;
  key: string;
  /** null when absent, or when present but unreadable (then `unreadable`). */
  existing: { value: PolicyRecord; revision: number } | null;
  unreadable: boolean;
}

async function readCurrent(store: Store, docs: PolicyDocument[]): Promise<Current[]> {
  return Promise.all(
    docs.map(async (doc) => {
      const key = policyKey(doc.kind, doc.namespace, doc.name);
      try {
        return { doc, key, existing: await store.get('policies', key, policyRecord), unreadable: false };
      } catch {
        return { doc, key, existing: null, unreadable: true };
      }
    }),
  );
}

/**
 * Sends every store write at once; prints `name outcome` for each that succeeded and
 * throws naming exactly the ones that failed (and why), if any. Nothing is rolled back.
 */
export async function sendAll(op: string, writes: { name: string; outcome: string; send: () => Promise<unknown> }[]): Promise<void> {
  const results = await Promise.allSettled(writes.map((w) => w.send()));
  const failed: string[] = [];
  writes.forEach((w, i) => {
    const r = results[i]!;
    if (r.status === 'fulfilled') console.log(`${w.name} ${w.outcome}`);
    else failed.push(`${w.name} (${(r.reason as Error).message})`);
  });
  if (failed.length === 0) return;
  const done = writes.length - failed.length;
  throw new Error(`${op}: ${failed.length} of ${writes.length} not written: ${failed.join(', ')}; ${done} written (listed above)`);
}

function parseTimeout(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new Error(`--timeout: expected a duration like 30s, 500ms or 2m, got ${v}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

export function registerPolicyCommands(program: Command): void {
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  /** apply and delete: files in, a store change out, optionally waited for. */
  const changeCommand = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .requiredOption('-f, --filename <file>', 'policy file (multi-document YAML) or a directory of them; repeatable', collect)
      .option('--wait', 'return once every node enforces the change')
      .option('--timeout <duration>', 'how long --wait waits', '30s')
      .option('--nats <url>', 'NATS server (default: $TCPLANE_NATS, or the running lab)');
  const waitAndReport = async (store: Store, timeoutMs: number) => {
    const nodes = await waitForEnforcement(store, 'policies', await store.lastRevision('policies'), { timeoutMs });
    console.log(`enforced on ${nodes.length} node${nodes.length === 1 ? '' : 's'}: ${nodes.join(', ')}`);
  };
  /**
   * The body of apply and delete: parse every file (all or nothing), read what each
   * document names in the store, let `change` write, then wait if asked. `change` may
   * return a check to run after the wait (delete's "not found").
   */
  const changeAction =
    <O extends { filename: string[]; timeout: string; wait?: boolean; nats?: string }>(
      change: (store: Store, current: Current[], o: O) => Promise<(() => void) | void>,
    ) =>
    async (o: O) => {
      const timeoutMs = parseTimeout(o.timeout);
      const docs = await parseAll(o.filename);
      await withStore(o.nats, async (store) => {
        const after = await change(store, await readCurrent(store, docs), o);
        if (o.wait) await waitAndReport(store, timeoutMs);
        after?.();
      });
    };

  changeCommand('apply', 'create or update policies from YAML files (all or nothing)').action(
    changeAction(async (store, current) => {
      // Every write is sent at once: they reach the agents together, and an agent folds
      // changes arriving within a few ms into one reconcile, so in practice a deny and
      // its allows land in the same one. Not a guarantee (a reconcile already running
      // takes the rest in the next run).
      const unchanged = (c: Current) => c.existing !== null && sameSpec(c.existing.value.spec, c.doc);
      for (const c of current.filter(unchanged)) console.log(`${displayName(c.doc)} unchanged`);
      await sendAll(
        'apply',
        current
          .filter((c) => !unchanged(c))
          .map((c) => ({
            name: displayName(c.doc),
            outcome: c.existing ? 'configured' : 'created',
            send: () => store.put('policies', c.key, policyRecord.parse(recordOf(c.doc))),
          })),
      );
    }),
  );

  changeCommand('delete', 'delete the policies named in YAML files')
    .option('--ignore-not-found', 'do not fail for policies that do not exist')
    .action(
      changeAction<{ filename: string[]; timeout: string; wait?: boolean; nats?: string; ignoreNotFound?: boolean }>(
        async (store, current, o) => {
          // An unreadable record counts as present: deleting it is what the user asked.
          const present = (c: Current) => c.existing !== null || c.unreadable;
          const missing = current.filter((c) => !present(c)).map((c) => displayName(c.doc));
          await sendAll(
            'delete',
            current.filter(present).map((c) => ({ name: displayName(c.doc), outcome: 'deleted', send: () => store.delete('policies', c.key) })),
          );
          return () => {
            if (missing.length && !o.ignoreNotFound) throw new Error(`not found: ${missing.join(', ')}`);
          };
        },
      ),
    );

  const get = program.command('get').description('list what the cluster store holds');
  const output = (cmd: Command) => cmd.option('-o, --output <format>', 'table or json', 'table').option('--nats <url>', 'NATS server');

  output(get.command('policies').description('policies, as applied')).action(async (o) => {
    await withStore(o.nats, async (store) => {
      const { entries, invalid } = await store.list('policies', policyRecord);
      const rows = [...entries.values()].map((e) => e.value).sort((a, b) => displayName(a).localeCompare(displayName(b)));
      if (o.output === 'json') return console.log(JSON.stringify(rows.map((r) => r.spec), null, 2));
      printTable(
        ['KIND', 'NAMESPACE', 'NAME', 'POD-SELECTOR', 'INGRESS RULES', 'SOURCE'],
        rows.map((r) => {
          const d = r.spec as PolicyDocument;
          return [
            r.kind,
            r.namespace ?? '',
            r.name,
            selectorText(d.podSelector?.matchLabels ?? {}),
            String(d.ingress?.length ?? 0),
            r.source ? `${r.source.file}:${r.source.line}` : '',
          ];
        }),
      );
      for (const i of invalid) console.error(`warning: policy ${i.key} in the store is invalid: ${i.error}`);
    });
  });

  output(get.command('endpoints').description('pods with their address, node and security identity')).action(async (o) => {
    await withStore(o.nats, async (store) => {
      const eps = [...(await store.list('endpoints', endpointRecord)).entries.values()].map((e) => e.value);
      const ids = (await store.list('identities', identityRecord)).entries;
      const labelsOf = (id: number) => ids.get(`id/${id}`)?.value.labels;
      eps.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
      if (o.output === 'json') return console.log(JSON.stringify(eps.map((e) => ({ ...e, labels: labelsOf(e.identity) })), null, 2));
      printTable(
        ['NAMESPACE', 'NAME', 'NODE', 'IP', 'IDENTITY', 'LABELS'],
        eps.map((e) => [
          e.namespace,
          e.name,
          e.node,
          e.ips.join(','),
          String(e.identity),
          RESERVED_IDENTITY_NAMES[e.identity] ?? selectorText(labelsOf(e.identity)?.pod ?? {}),
        ]),
      );
    });
  });

  output(get.command('nodes').description('nodes with a running agent and what they enforce')).action(async (o) => {
    await withStore(o.nats, async (store) => {
      const nodes = [...(await store.list('nodes', nodeRecord)).entries.values()].map((e) => e.value);
      const status = (await store.list('status', statusRecord)).entries;
      const policiesRev = await store.lastRevision('policies');
      nodes.sort((a, b) => a.name.localeCompare(b.name));
      if (o.output === 'json') return console.log(JSON.stringify(nodes.map((n) => ({ ...n, status: status.get(n.name)?.value })), null, 2));
      printTable(
        ['NODE', 'ADDRESSES', 'POD-CIDR', 'ENDPOINTS', 'POLICY-REVISION', 'LAST-REPORT'],
        nodes.map((n) => {
          const s = status.get(n.name)?.value;
          return [
            n.name,
            n.addresses.join(','),
            n.podCIDR ?? '',
            String(s?.endpoints ?? '-'),
            s ? `${s.revisions.policies ?? 0}/${policiesRev}` : '-',
            s?.updatedAt ?? 'never',
          ];
        }),
      );
    });
  });

  output(get.command('services').description('services (not supported yet)')).action(async () => {
    throw new Error('get services: the Service kind is not supported yet');
  });
}

function selectorText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(',') : '<all>';
}
