/**
 * The service maps of a node (bpf/include/tp_service.h), written as a difference like
 * the policy maps: frontends and backends through MapMirrors, the Maglev tables through
 * LutTables. Upserts go backends → tables → frontends (nothing points at what is not
 * there yet), deletes the other way round.
 */
import { BpfMap, MAP_TYPE, MapOfMaps } from '../bpf/map.js';
import { BPF_F_INNER_MAP } from '../bpf/libbpf.js';
import type { ServiceMaps } from './desired.js';
import type { TpBackend, TpSvcKey, TpSvcValue } from './structs.js';
import type { MapMirror, SyncResult } from './sync.js';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** Tables are never changed once built, so the same array is the same table (the compiler's cache hands back the one it wrote). */
const sameTable = (a: Uint32Array, b: Uint32Array) => a === b || (a.length === b.length && a.every((v, i) => v === b[i]));

/**
 * The Maglev tables in tp_lut_v1: lut_id → an inner array of backend ids, one per slot.
 * A table is never edited in place: a change creates a new inner map, fills it, and
 * swaps it in with one update of the outer map, so a lookup sees the old table or the
 * new one, never a mix. Reads what an earlier agent left, so unchanged tables are kept.
 */
export class LutTables {
  private readonly current = new Map<number, Uint32Array>();

  constructor(private readonly outer: MapOfMaps) {
    for (const key of outer.keys()) {
      const inner = outer.inner(key);
      if (!inner) continue;
      try {
        const values = inner.arrayValues();
        this.current.set(key.readUInt32LE(0), Uint32Array.from(values, (v) => v.readUInt32LE(0)));
      } finally {
        inner.close();
      }
    }
  }

  get size(): number {
    return this.current.size;
  }

  /** The table under lut_id, as written. */
  table(id: number): Uint32Array | undefined {
    return this.current.get(id);
  }

  ids(): number[] {
    return [...this.current.keys()];
  }

  /** Writes every desired table that differs from what is there; returns how many. */
  applyWrites(desired: ReadonlyMap<number, Uint32Array>): number {
    let n = 0;
    for (const [id, table] of desired) {
      const have = this.current.get(id);
      if (have && sameTable(have, table)) continue;
      const inner = BpfMap.create(MAP_TYPE.ARRAY, 'tp_lut_inner', 4, 4, table.length, BPF_F_INNER_MAP);
      try {
        const keys = Buffer.alloc(4 * table.length);
        for (let i = 0; i < table.length; i++) keys.writeUInt32LE(i, 4 * i);
        const values = Buffer.from(table.buffer, table.byteOffset, table.byteLength);
        const entries: [Buffer, Buffer][] = [];
        for (let i = 0; i < table.length; i++) entries.push([keys.subarray(4 * i, 4 * i + 4), values.subarray(4 * i, 4 * i + 4)]);
        inner.updateMany(entries);
        this.outer.set(u32(id), inner);
      } finally {
        inner.close(); // the outer map holds it now
      }
      this.current.set(id, table);
      n++;
    }
    return n;
  }

  /** Removes every table not desired; returns how many. */
  applyDeletes(desired: ReadonlyMap<number, Uint32Array>): number {
    let n = 0;
    for (const id of [...this.current.keys()]) {
      if (desired.has(id)) continue;
      this.outer.delete(u32(id));
      this.current.delete(id);
      n++;
    }
    return n;
  }
}

export class ServiceMapSet {
  constructor(
    readonly frontends: MapMirror<TpSvcKey, TpSvcValue>,
    readonly backends: MapMirror<number, TpBackend>,
    readonly luts: LutTables,
  ) {}

  /** Makes the service maps hold exactly `desired`. */
  sync(desired: ServiceMaps): SyncResult {
    const fe = this.frontends.diff(desired.frontends);
    const be = this.backends.diff(desired.backends);
    this.backends.applyUpserts(be);
    const lutWrites = this.luts.applyWrites(desired.luts);
    this.frontends.applyUpserts(fe);
    this.frontends.applyDeletes(fe);
    const lutDeletes = this.luts.applyDeletes(desired.luts);
    this.backends.applyDeletes(be);
    const names = { fe: this.frontends.map.raw.name, be: this.backends.map.raw.name };
    return {
      writes: { [names.be]: be.upserts.length, tp_lut_v1: lutWrites, [names.fe]: fe.upserts.length },
      deletes: { [names.fe]: fe.deletes.length, tp_lut_v1: lutDeletes, [names.be]: be.deletes.length },
    };
  }

  /** The mirrored maps, for entry-count metrics. */
  all(): MapMirror<unknown, unknown>[] {
    return [this.frontends, this.backends] as unknown as MapMirror<unknown, unknown>[];
  }
}
