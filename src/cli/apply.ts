/**
 * `tcplane apply -f` and `delete -f`, for every kind tcplane reads (NetworkPolicy,
 * Service).
 *
 * Both validate every document of every file before touching the store: a file with any
 * error applies nothing and names file, line and field. For services, `apply` then
 * allocates what each needs (ClusterIP, node ports, port ids; src/services/allocate.ts)
 * — a value already taken or outside its range is an error at its field, and then the
 * claims made are withdrawn and nothing is applied. Every write is then sent at once.
 * `--wait` returns once every registered node reports the change enforced in its maps
 * (the store revision it has programmed), or fails after `--timeout` naming the nodes
 * that lag.
 */
import type { Command } from 'commander';
import { Allocator, claimsOf } from '../services/allocate.js';
import { ensureClusterConfig } from '../services/cluster-config.js';
import { serviceOf, storedServices } from '../services/stored.js';
import { storedPolicy } from '../policy/schema.js';
import type { Service } from '../services/types.js';
import { nodeRecord, policyRecord, serviceRecord, statusRecord, type BucketKind, type PolicyRecord, type ServiceRecord } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { LocatedErrors, type LocatedError } from '../yaml/located.js';
import { displayName, fieldError, readManifests, storeKey, type Manifest } from './manifest.js';
import { withStore } from './store.js';

export interface WaitOptions {
  timeoutMs: number;
  /** Called with the nodes still lagging, at most once a second. */
  onProgress?: (lagging: string[]) => void;
}

/**
 * Waits until every registered node reports each bucket enforced at its revision or
 * later. Throws naming the lagging nodes (and how far each is) when the timeout passes.
 */
export async function waitForEnforcement(store: Store, targets: Partial<Record<BucketKind, number>>, o: WaitOptions): Promise<string[]> {
  const deadline = Date.now() + o.timeoutMs;
  const wanted = Object.entries(targets) as [BucketKind, number][];
  let lastReport = 0;
  for (;;) {
    const nodes = [...(await store.list('nodes', nodeRecord)).entries.keys()].sort();
    const status = (await store.list('status', statusRecord)).entries;
    const behind = (n: string) => wanted.filter(([b, rev]) => (status.get(n)?.value.revisions[b] ?? 0) < rev);
    const lagging = nodes.filter((n) => behind(n).length > 0);
    if (nodes.length > 0 && lagging.length === 0) return nodes;
    if (Date.now() >= deadline) {
      const detail =
        nodes.length === 0
          ? 'no node has registered an agent'
          : lagging
              .map((n) => {
                const s = status.get(n)?.value;
                if (!s) return `${n} (no status)`;
                const at = behind(n).map(([b, rev]) => `${b} at revision ${s.revisions[b] ?? 0} of ${rev}`).join(', ');
                return `${n} (${at}, last report ${s.updatedAt})`;
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

/**
 * After enforcement: fails naming every node and endpoint that failed closed (its policy
 * entries did not fit, so it admits nothing): enforced, but not as written.
 */
async function failIfClosed(store: Store, nodes: readonly string[]): Promise<void> {
  const status = (await store.list('status', statusRecord)).entries;
  const closed = nodes.flatMap((n) => (status.get(n)?.value.failedClosed ?? []).map((f) => `${n}: ${f.endpoint} (needs ${f.needed} policy entries, ${f.why} of ${f.limit})`));
  if (closed.length > 0) throw new Error(`endpoints failed closed, admitting nothing until their policy entries fit: ${closed.join('; ')}`);
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

export function parseTimeout(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new Error(`--timeout: expected a duration like 30s, 500ms or 2m, got ${v}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

type Write = Parameters<typeof sendAll>[1][number];

/** Same document, ignoring where it was read from. */
function sameSpec(a: unknown, b: unknown): boolean {
  const strip = (x: unknown) => JSON.stringify({ ...(x as object), source: undefined });
  return strip(a) === strip(b);
}

const bucketOf = (m: Manifest): BucketKind => (m.kind === 'policy' ? 'policies' : 'services');

/** What the store holds under a document's key; null when absent or unreadable (then `unreadable`). */
interface Current {
  m: Manifest;
  key: string;
  existing: PolicyRecord | ServiceRecord | null;
  unreadable: boolean;
}

async function readCurrent(store: Store, manifests: Manifest[]): Promise<Current[]> {
  return Promise.all(
    manifests.map(async (m) => {
      const key = storeKey(m);
      try {
        const rec = m.kind === 'policy' ? await store.get('policies', key, policyRecord) : await store.get('services', key, serviceRecord);
        return { m, key, existing: rec?.value ?? null, unreadable: false };
      } catch {
        return { m, key, existing: null, unreadable: true };
      }
    }),
  );
}

/** Policies: put what changed. */
function policyWrites(store: Store, current: Current[]): Write[] {
  const writes: Write[] = [];
  for (const c of current) {
    if (c.m.kind !== 'policy') continue;
    const d = c.m.doc;
    const spec = storedPolicy(d);
    if (c.existing && sameSpec(c.existing.spec, spec)) {
      console.log(`${displayName(d)} unchanged`);
      continue;
    }
    const rec: PolicyRecord = { v: 1, kind: d.kind, apiVersion: d.apiVersion, namespace: d.namespace, name: d.name, spec, source: d.source };
    writes.push({ name: displayName(d), outcome: c.existing ? 'configured' : 'created', send: () => store.put('policies', c.key, policyRecord.parse(rec)) });
  }
  return writes;
}

/**
 * Services: allocate what each needs, all or nothing, then the writes. Returns the
 * writes and the claims to withdraw once they are written (what updated services no
 * longer use).
 */
async function serviceWrites(store: Store, current: Current[]): Promise<{ writes: Write[]; release: string[]; alloc?: Allocator }> {
  const services = current.filter((c) => c.m.kind === 'service');
  if (services.length === 0) return { writes: [], release: [] };
  const { config } = await ensureClusterConfig(store);
  const stored = (await storedServices(store)).services;
  const alloc = await Allocator.load(store, config, stored);
  const problems: LocatedError[] = [];
  const made: string[] = [];
  const planned: { c: Current; svc: Service; before?: Service }[] = [];
  for (const c of services) {
    const before = serviceOf(c.existing as ServiceRecord | null);
    const r = await alloc.allocate(c.m.doc as Service, before);
    if (r.problems.length > 0) problems.push(...r.problems.map((p) => fieldError(c.m, p.paths, p.detail)));
    else {
      made.push(...r.made);
      planned.push({ c, svc: r.service, before });
    }
  }
  if (problems.length > 0) {
    await alloc.release(made);
    problems.sort((a, b) => a.line - b.line);
    throw new Error(`${new LocatedErrors(problems).message}\nnothing applied`);
  }
  const writes: Write[] = [];
  const release: string[] = [];
  for (const { c, svc, before } of planned) {
    if (c.existing && sameSpec(c.existing.spec, svc)) {
      console.log(`${displayName(svc)} unchanged`);
      continue;
    }
    const rec: ServiceRecord = { v: 1, namespace: svc.namespace, name: svc.name, spec: svc, source: svc.source };
    writes.push({ name: displayName(svc), outcome: c.existing ? 'configured' : 'created', send: () => store.put('services', c.key, serviceRecord.parse(rec)) });
    if (before) {
      const keep = new Set(claimsOf(svc));
      release.push(...claimsOf(before).filter((k) => !keep.has(k)));
    }
  }
  return { writes, release, alloc };
}

export function registerApplyCommands(program: Command): void {
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  /** apply and delete: files in, a store change out, optionally waited for. */
  const changeCommand = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .requiredOption('-f, --filename <file>', 'policy or service file (multi-document YAML) or a directory of them; repeatable', collect)
      .option('--wait', 'return once every node enforces the change')
      .option('--timeout <duration>', 'how long --wait waits', '30s')
      .option('--nats <url>', 'NATS server (default: $TCPLANE_NATS, or the running lab)');
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
      const manifests = await readManifests(o.filename);
      await withStore(o.nats, async (store) => {
        const after = await change(store, await readCurrent(store, manifests), o);
        if (o.wait) {
          const buckets = [...new Set(manifests.map(bucketOf))];
          const targets = Object.fromEntries(await Promise.all(buckets.map(async (b) => [b, await store.lastRevision(b)] as const)));
          const nodes = await waitForEnforcement(store, targets, { timeoutMs });
          console.log(`enforced on ${nodes.length} node${nodes.length === 1 ? '' : 's'}: ${nodes.join(', ')}`);
          await failIfClosed(store, nodes);
        }
        after?.();
      });
    };

  changeCommand('apply', 'create or update policies and services from YAML files (all or nothing)').action(
    changeAction(async (store, current) => {
      // Every write is sent at once: they reach the agents together, and an agent folds
      // changes arriving within a few ms into one reconcile, so in practice a deny and
      // its allows land in the same one. Not a guarantee (a reconcile already running
      // takes the rest in the next run).
      const services = await serviceWrites(store, current);
      await sendAll('apply', [...policyWrites(store, current), ...services.writes]);
      await services.alloc?.release(services.release);
    }),
  );

  changeCommand('delete', 'delete the policies and services named in YAML files')
    .option('--ignore-not-found', 'do not fail for documents that do not exist')
    .action(
      changeAction<{ filename: string[]; timeout: string; wait?: boolean; nats?: string; ignoreNotFound?: boolean }>(
        async (store, current, o) => {
          // An unreadable record counts as present: deleting it is what the user asked.
          const present = (c: Current) => c.existing !== null || c.unreadable;
          const missing = current.filter((c) => !present(c)).map((c) => displayName(c.m.doc));
          await sendAll(
            'delete',
            current.filter(present).map((c) => ({ name: displayName(c.m.doc), outcome: 'deleted', send: () => store.delete(bucketOf(c.m), c.key) })),
          );
          // A deleted service's allocations are free again.
          const freed = current.filter((c) => c.m.kind === 'service').flatMap((c) => {
            const s = serviceOf(c.existing as ServiceRecord | null);
            return s ? claimsOf(s) : [];
          });
          await Promise.all(freed.map((k) => store.delete('allocations', k)));
          return () => {
            if (missing.length && !o.ignoreNotFound) throw new Error(`not found: ${missing.join(', ')}`);
          };
        },
      ),
    );
}
