/**
 * The cluster store: a NATS connection and the JetStream KV buckets of schema.ts.
 * Reads validate every value against its schema; writes are versioned documents.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { z } from 'zod';
import { BUCKETS, type BucketKind } from './schema.js';

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** One change seen by a watcher: a validated value, or a deletion. */
export type Change<T> =
  | { type: 'put'; key: string; value: T; revision: number }
  | { type: 'delete'; key: string; revision: number }
  | { type: 'invalid'; key: string; revision: number; error: string };

export interface WatchHandle {
  /** Resolves once every value present when the watch began has been delivered. */
  readonly synced: Promise<void>;
  stop(): void;
}

export class Store {
  private readonly kvs = new Map<BucketKind, KV>();

  private constructor(
    readonly nc: NatsConnection,
    private readonly kvm: Kvm,
  ) {}

  /** Connects and opens (creating if needed) every bucket. */
  static async connect(url: string, opts: { name?: string; timeoutMs?: number } = {}): Promise<Store> {
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: url,
        name: opts.name ?? 'tcplane',
        timeout: opts.timeoutMs ?? 5000,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
      });
    } catch (err) {
      throw new StoreError(`connect: cannot reach NATS at ${url}: ${(err as Error).message}`, { cause: err });
    }
    const store = new Store(nc, new Kvm(nc));
    try {
      for (const kind of Object.keys(BUCKETS) as BucketKind[]) {
        // history 1: the store holds desired state, not an audit log.
        store.kvs.set(kind, await store.kvm.create(BUCKETS[kind], { history: 1 }));
      }
    } catch (err) {
      await nc.close();
      throw new StoreError(`connect: cannot open KV buckets (is JetStream enabled?): ${(err as Error).message}`, {
        cause: err,
      });
    }
    return store;
  }

  bucket(kind: BucketKind): KV {
    const kv = this.kvs.get(kind);
    if (!kv) throw new StoreError(`bucket ${kind}: not open`);
    return kv;
  }

  async put(kind: BucketKind, key: string, value: unknown): Promise<number> {
    return this.bucket(kind).put(key, JSON.stringify(value));
  }

  /** Writes only if the key does not exist; returns the revision, or null if it did. */
  async create(kind: BucketKind, key: string, value: unknown): Promise<number | null> {
    try {
      return await this.bucket(kind).create(key, JSON.stringify(value));
    } catch (err) {
      // The server answers "wrong last sequence" when the key exists (create is a
      // put expecting no previous value). Anything else is a real failure.
      if (/wrong last sequence|key exists/i.test((err as Error).message)) return null;
      throw err;
    }
  }

  async get<T>(kind: BucketKind, key: string, schema: z.ZodType<T>): Promise<{ value: T; revision: number } | null> {
    const e = await this.bucket(kind).get(key);
    if (!e || e.operation !== 'PUT') return null;
    const parsed = parseValue(e.value, schema);
    if (!parsed.ok) throw new StoreError(`${BUCKETS[kind]}/${key}: ${parsed.error}`);
    return { value: parsed.value, revision: e.revision };
  }

  async delete(kind: BucketKind, key: string): Promise<number> {
    const kv = this.bucket(kind);
    await kv.delete(key);
    const e = await kv.get(key);
    return e?.revision ?? 0;
  }

  /** Every live value of a bucket; invalid ones are returned separately. */
  async list<T>(kind: BucketKind, schema: z.ZodType<T>): Promise<{ entries: Map<string, { value: T; revision: number }>; invalid: { key: string; error: string }[] }> {
    const entries = new Map<string, { value: T; revision: number }>();
    const invalid: { key: string; error: string }[] = [];
    const w = this.watch(kind, schema, (c) => {
      if (c.type === 'put') entries.set(c.key, { value: c.value, revision: c.revision });
      else if (c.type === 'delete') entries.delete(c.key);
      else invalid.push({ key: c.key, error: c.error });
    });
    try {
      await w.synced;
    } finally {
      w.stop();
    }
    return { entries, invalid };
  }

  /** Last revision of a bucket's stream (0 when it never held anything). */
  async lastRevision(kind: BucketKind): Promise<number> {
    const st = await this.bucket(kind).status();
    return st.streamInfo.state.last_seq;
  }

  /**
   * Delivers the current value of every key, then every change, in revision order.
   * `synced` resolves once the values present at the start have all been delivered.
   */
  watch<T>(kind: BucketKind, schema: z.ZodType<T>, onChange: (c: Change<T>) => void): WatchHandle {
    const kv = this.bucket(kind);
    let stopped = false;
    let iter: { stop(): void } | undefined;
    let markSynced!: () => void;
    let failSynced!: (e: unknown) => void;
    const synced = new Promise<void>((resolve, reject) => {
      markSynced = resolve;
      failSynced = reject;
    });
    void (async () => {
      try {
        const st = await kv.status();
        const target = st.streamInfo.state.messages === 0 ? 0 : st.streamInfo.state.last_seq;
        const it = await kv.watch();
        iter = it;
        if (stopped) it.stop();
        // Only once the watch exists: a caller that stops as soon as it is synced must
        // not race the consumer being created (a drain would wait on it).
        let isSynced = target === 0;
        if (isSynced) markSynced();
        for await (const e of it as AsyncIterable<KvWatchEntry>) {
          if (stopped) break;
          onChange(toChange(e, schema));
          if (!isSynced && e.revision >= target) {
            isSynced = true;
            markSynced();
          }
        }
      } catch (err) {
        failSynced(new StoreError(`watch ${BUCKETS[kind]}: ${(err as Error).message}`, { cause: err }));
      }
    })();
    return {
      synced,
      stop: () => {
        stopped = true;
        iter?.stop();
      },
    };
  }

  /** Drains (flushing pending writes), giving up after 2 s and closing outright. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 2000)));
    try {
      const r = await Promise.race([this.nc.drain().then(() => 'drained' as const), gaveUp]);
      if (r === 'timeout') await this.nc.close();
    } catch {
      await this.nc.close().catch(() => undefined);
    } finally {
      clearTimeout(timer);
    }
  }
}

function parseValue<T>(raw: Uint8Array, schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(raw));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { ok: false, error: `${issue?.path.join('.') || '(value)'}: ${issue?.message ?? 'invalid'}` };
  }
  return { ok: true, value: r.data };
}

function toChange<T>(e: KvWatchEntry, schema: z.ZodType<T>): Change<T> {
  if (e.operation !== 'PUT') return { type: 'delete', key: e.key, revision: e.revision };
  const parsed = parseValue(e.value, schema);
  return parsed.ok
    ? { type: 'put', key: e.key, value: parsed.value, revision: e.revision }
    : { type: 'invalid', key: e.key, revision: e.revision, error: parsed.error };
}
