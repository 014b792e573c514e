/**
 * Writes desired map contents as a difference against what the maps hold.
 *
 * Each MapMirror reads its map once (adopting whatever an earlier agent left) and then
 * tracks every write, so a reconcile compares in memory and touches only entries whose
 * bytes change. NodeMaps applies the difference in an order that never opens a gap:
 * first every upsert (policy entries before the ipcache and endpoints that make them
 * reachable), then every delete in the reverse order (endpoints and ipcache before the
 * policy entries they relied on). A pod gaining isolation gets its allow entries before
 * its default flips to deny; a pod losing it flips to allow before entries go.
 */
import type { TypedMap } from '../bpf/map.js';
import type { DesiredMaps, Entry } from '../policy/compile.js';

export interface MapDiff {
  upserts: [Buffer, Buffer][];
  deletes: Buffer[];
}

export class MapMirror<K, V> {
  private readonly current = new Map<string, Buffer>();

  constructor(readonly map: TypedMap<K, V>) {
    for (const [k, v] of map.raw.entries()) this.current.set(k.toString('hex'), v);
  }

  get size(): number {
    return this.current.size;
  }

  diff(desired: readonly Entry<K, V>[]): MapDiff {
    const want = new Map<string, [Buffer, Buffer]>();
    for (const e of desired) {
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

  applyUpserts(d: MapDiff): void {
    this.map.raw.updateMany(d.upserts);
    for (const [k, v] of d.upserts) this.current.set(k.toString('hex'), v);
  }

  applyDeletes(d: MapDiff): void {
    for (const k of d.deletes) {
      this.map.raw.delete(k);
      this.current.delete(k.toString('hex'));
    }
  }
}

export type MapRole = 'policy' | 'ipcidr' | 'ipcache' | 'endpoints';
/** Upserts in this order, deletes in the reverse. */
const ORDER: MapRole[] = ['policy', 'ipcidr', 'ipcache', 'endpoints'];

export interface SyncResult {
  writes: Record<string, number>;
  deletes: Record<string, number>;
}

export class NodeMaps {
  constructor(readonly mirrors: { [R in MapRole]: MapMirror<DesiredMaps[R][number]['key'], DesiredMaps[R][number]['value']> }) {}

  /** Makes the maps hold exactly `desired`; returns how many entries each map wrote and deleted. */
  sync(desired: DesiredMaps): SyncResult {
    const diffs = Object.fromEntries(ORDER.map((r) => [r, this.mirrors[r].diff(desired[r] as never)])) as Record<MapRole, MapDiff>;
    for (const r of ORDER) this.mirrors[r].applyUpserts(diffs[r]);
    for (const r of [...ORDER].reverse()) this.mirrors[r].applyDeletes(diffs[r]);
    const name = (r: MapRole) => this.mirrors[r].map.raw.name;
    return {
      writes: Object.fromEntries(ORDER.map((r) => [name(r), diffs[r].upserts.length])),
      deletes: Object.fromEntries(ORDER.map((r) => [name(r), diffs[r].deletes.length])),
    };
  }
}
