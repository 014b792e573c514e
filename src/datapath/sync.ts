/**
 * Writes desired map contents as a difference against what the maps hold.
 *
 * Each MapMirror reads its map once (adopting whatever an earlier agent left) and then
 * tracks every write, so a reconcile compares in memory and touches only entries whose
 * bytes change. An OrderedMaps applies the difference over several maps in an order
 * that never opens a gap: first every upsert, in the order given (what is referred to
 * before what refers to it), then every delete in the reverse order. For the policy
 * maps (policy entries before the ipcache and endpoints that make them reachable) a pod
 * gaining isolation gets its allow entries before its default flips to deny, and a pod
 * losing it flips to allow before entries go.
 */
import { MAP_TYPE, type TypedMap } from '../bpf/map.js';
import type { Entry, PolicyMaps } from './desired.js';
import { generationsFor, type GenerationMirrors } from './policy-generation.js';

export interface MapDiff {
  upserts: [Buffer, Buffer][];
  deletes: Buffer[];
}

export class MapMirror<K, V> {
  private readonly current = new Map<string, Buffer>();
  /** Array maps: every index exists; an all-zero value is an absent entry and deleting writes zeros. */
  private readonly array: boolean;

  constructor(readonly map: TypedMap<K, V>) {
    this.array = map.raw.info.type === MAP_TYPE.ARRAY;
    if (this.array) {
      map.raw.arrayValues().forEach((v, i) => {
        if (v.some((b) => b !== 0)) this.current.set(map.keyCodec.encode(i as K).toString('hex'), Buffer.from(v));
      });
    } else {
      for (const [k, v] of map.raw.entries()) this.current.set(k.toString('hex'), v);
    }
  }

  get size(): number {
    return this.current.size;
  }

  /** Keys the map holds now, decoded. */
  *keys(): Generator<K> {
    for (const hex of this.current.keys()) yield this.map.keyCodec.decode(Buffer.from(hex, 'hex'));
  }

  /** The value the map holds for `key`, decoded. */
  get(key: K): V | undefined {
    const v = this.current.get(this.map.keyCodec.encode(key).toString('hex'));
    return v && this.map.valueCodec.decode(v);
  }

  diff(desired: readonly Entry<K, V>[]): MapDiff {
    const want = new Map<string, [Buffer, Buffer]>();
    for (const e of desired) {
      if (e.raw) {
        want.set(e.raw.hex, [e.raw.key, e.raw.value]);
        continue;
      }
      const k = this.map.keyCodec.encode(e.key);
      want.set(k.toString('hex'), [k, this.map.valueCodec.encode(e.value)]);
    }
    const upserts: [Buffer, Buffer][] = [];
    for (const [hex, [k, v]] of want) {
      const have = this.current.get(hex);
      if (!have || !have.equals(v)) upserts.push([k, v]);
    }
    const deletes: Buffer[] = [];
    for (const hex of this.current.keys()) if (!want.has(hex)) deletes.push(Buffer.from(hex, 'hex'));
    return { upserts, deletes };
  }

  /** The hex form of an entry's key (the mirror's own index). */
  hexOf(e: Entry<K, V>): string {
    return e.raw?.hex ?? this.map.keyCodec.encode(e.key).toString('hex');
  }

  /** Whether the map holds `hex`'s key. */
  holds(hex: string): boolean {
    return this.current.has(hex);
  }

  /** Hex keys the map holds now. */
  hexKeys(): IterableIterator<string> {
    return this.current.keys();
  }

  /** The entries of `desired` whose bytes differ from what the map holds. */
  upsertsOf(desired: readonly Entry<K, V>[]): [Buffer, Buffer][] {
    const out: [Buffer, Buffer][] = [];
    for (const e of desired) {
      const k = e.raw?.key ?? this.map.keyCodec.encode(e.key);
      const v = e.raw?.value ?? this.map.valueCodec.encode(e.value);
      const have = this.current.get(e.raw?.hex ?? k.toString('hex'));
      if (!have || !have.equals(v)) out.push([k, v]);
    }
    return out;
  }

  applyUpserts(d: MapDiff): void {
    this.map.raw.updateMany(d.upserts);
    for (const [k, v] of d.upserts) this.current.set(k.toString('hex'), v);
  }

  applyDeletes(d: MapDiff): void {
    const zero = Buffer.alloc(this.map.valueCodec.size);
    for (const k of d.deletes) {
      if (this.array) this.map.raw.update(k, zero);
      else this.map.raw.delete(k);
      this.current.delete(k.toString('hex'));
    }
  }
}

export interface SyncResult {
  /** Entries written and deleted, per map name. */
  writes: Record<string, number>;
  deletes: Record<string, number>;
}

type KeyOf<E> = E extends readonly Entry<infer K, unknown>[] ? K : never;
type ValueOf<E> = E extends readonly Entry<unknown, infer V>[] ? V : never;
/** One mirror per role, typed by the entries the desired state gives that role. */
type Mirrors<D, R extends keyof D> = { [P in R]: MapMirror<KeyOf<D[P]>, ValueOf<D[P]>> };

/** Several maps synced together: upserts in `order`, deletes in the reverse. */
export class OrderedMaps<D, R extends keyof D & string> {
  constructor(
    private readonly order: readonly R[],
    readonly mirrors: Mirrors<D, R>,
  ) {}

  /**
   * Makes the maps hold exactly `desired`; returns how many entries each map wrote and
   * deleted. `known`: differences a caller already computed against these mirrors.
   */
  sync(desired: Pick<D, R>, known: Partial<Record<R, MapDiff>> = {}): SyncResult {
    const mirror = (r: R) => this.mirrors[r] as unknown as MapMirror<unknown, unknown>;
    const diffs = new Map(this.order.map((r) => [r, known[r] ?? mirror(r).diff(desired[r] as readonly Entry<unknown, unknown>[])]));
    for (const r of this.order) mirror(r).applyUpserts(diffs.get(r)!);
    for (const r of [...this.order].reverse()) mirror(r).applyDeletes(diffs.get(r)!);
    const name = (r: R) => mirror(r).map.raw.name;
    return {
      writes: Object.fromEntries(this.order.map((r) => [name(r), diffs.get(r)!.upserts.length])),
      deletes: Object.fromEntries(this.order.map((r) => [name(r), diffs.get(r)!.deletes.length])),
    };
  }

  /** Every mirror, for metrics. */
  all(): MapMirror<unknown, unknown>[] {
    return this.order.map((r) => this.mirrors[r] as unknown as MapMirror<unknown, unknown>);
  }
}

export type PolicyMapRole = 'policy' | 'ipcidr' | 'ipcache' | 'endpoints';
/** Policy entries first, then what makes them reachable. */
export const POLICY_MAP_ORDER: readonly PolicyMapRole[] = ['policy', 'ipcidr', 'ipcache', 'endpoints'];

/**
 * The policy maps: written in POLICY_MAP_ORDER, then the endpoints whose policy
 * generation moves (policy-generation.ts), after every delete.
 */
export class PolicyMapSet extends OrderedMaps<PolicyMaps, PolicyMapRole> {
  constructor(mirrors: Mirrors<PolicyMaps, PolicyMapRole>) {
    super(POLICY_MAP_ORDER, mirrors);
  }

  override sync(desired: PolicyMaps): SyncResult {
    const { staged, moved, diffs } = generationsFor(this.mirrors as unknown as GenerationMirrors, desired);
    const result = super.sync(staged, diffs);
    const endpoints = this.mirrors.endpoints;
    const last = { upserts: endpoints.upsertsOf(moved), deletes: [] };
    endpoints.applyUpserts(last);
    result.writes[endpoints.map.raw.name] = (result.writes[endpoints.map.raw.name] ?? 0) + last.upserts.length;
    return result;
  }
}
