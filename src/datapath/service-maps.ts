/**
 * The service maps of a node (bpf/include/tp_service.h), written as a difference like
 * the policy maps — frontends and backends through MapMirrors, the Maglev tables through
 * LutTables — but per service: only the services that changed are compared, so adding
 * one service when 10,000 exist writes and compares one. Upserts go backends → tables →
 * frontends (nothing points at what is not there yet), deletes the other way round.
 */
import { BpfMap, MAP_TYPE, MapOfMaps } from '../bpf/map.js';
import { BPF_F_INNER_MAP } from '../bpf/libbpf.js';
import type { Entry, ServiceGroup, ServiceMaps } from './desired.js';
import type { TpBackend, TpSvcKey, TpSvcValue } from './structs.js';
import type { MapDiff, MapMirror, SyncResult } from './sync.js';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

const sameTable = (a: Uint32Array, b: Uint32Array) => a.length === b.length && a.every((v, i) => v === b[i]);

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
      if (have === table || (have && sameTable(have, table))) continue; // the same compiled table: unchanged
      const inner = BpfMap.create(MAP_TYPE.ARRAY, 'tp_lut_inner', 4, 4, table.length, BPF_F_INNER_MAP);
      try {
        // Keys 0..n-1 and the table itself, as little-endian u32s back to back.
        const keys = Buffer.from(Uint32Array.from({ length: table.length }, (_, i) => i).buffer);
        inner.updatePacked(keys, Buffer.from(table.buffer, table.byteOffset, table.byteLength), table.length);
        this.outer.set(u32(id), inner);
      } finally {
        inner.close(); // the outer map holds it now
      }
      this.current.set(id, table); // compiled tables are never changed after compiling
      n++;
    }
    return n;
  }

  /** Removes these tables; returns how many there were. */
  remove(ids: Iterable<number>): number {
    let n = 0;
    for (const id of ids) {
      if (!this.current.has(id)) continue;
      this.outer.delete(u32(id));
      this.current.delete(id);
      n++;
    }
    return n;
  }
}

export class ServiceMapSet {
  /** The groups last written, and which group each key and table belongs to. */
  private last = new Map<string, ServiceGroup>();
  private readonly owner = { fe: new Map<string, string>(), be: new Map<string, string>(), lut: new Map<number, string>() };
  /** Whether a grouped sync ran since the maps were adopted (the first also removes what no group owns). */
  private grouped = false;

  constructor(
    readonly frontends: MapMirror<TpSvcKey, TpSvcValue>,
    readonly backends: MapMirror<number, TpBackend>,
    readonly luts: LutTables,
  ) {}

  /**
   * Makes the service maps hold exactly `desired`. Only its groups that changed (new
   * objects, or gone) are compared: their entries are
   * written where their bytes differ, and the entries their old version had and the new
   * one has not are deleted — unless another group owns the key now (a ClusterIP freed
   * by one service and taken by another in the same change).
   */
  sync(desired: ServiceMaps): SyncResult {
    const groups = desired.groups;
    const changed: [string, ServiceGroup | undefined][] = [];
    for (const [k, g] of groups) if (this.last.get(k) !== g) changed.push([k, g]);
    for (const k of this.last.keys()) if (!groups.has(k)) changed.push([k, undefined]);

    const fe: MapDiff = { upserts: [], deletes: [] };
    const be: MapDiff = { upserts: [], deletes: [] };
    const tables = new Map<number, Uint32Array>();
    for (const [k, g] of changed) {
      if (!g) continue;
      fe.upserts.push(...this.frontends.upsertsOf(g.frontends));
      be.upserts.push(...this.backends.upsertsOf(g.backends));
      for (const e of g.frontends) this.owner.fe.set(this.frontends.hexOf(e), k);
      for (const e of g.backends) this.owner.be.set(this.backends.hexOf(e), k);
      for (const [id, t] of g.luts) {
        tables.set(id, t);
        this.owner.lut.set(id, k);
      }
    }
    const goneTables: number[] = [];
    const release = <K, V>(k: string, entries: Entry<K, V>[], now: Entry<K, V>[] | undefined, mirror: MapMirror<K, V>, owners: Map<string, string>, into: Buffer[]) => {
      const keep = new Set((now ?? []).map((e) => mirror.hexOf(e)));
      for (const e of entries) {
        const hex = mirror.hexOf(e);
        if (keep.has(hex) || owners.get(hex) !== k) continue;
        owners.delete(hex);
        if (mirror.holds(hex)) into.push(Buffer.from(hex, 'hex'));
      }
    };
    for (const [k, g] of changed) {
      const old = this.last.get(k);
      if (!old) continue;
      release(k, old.frontends, g?.frontends, this.frontends, this.owner.fe, fe.deletes);
      release(k, old.backends, g?.backends, this.backends, this.owner.be, be.deletes);
      const keep = new Set((g?.luts ?? []).map(([id]) => id));
      for (const [id] of old.luts) {
        if (keep.has(id) || this.owner.lut.get(id) !== k) continue;
        this.owner.lut.delete(id);
        goneTables.push(id);
      }
    }
    if (!this.grouped) {
      // After adoption: whatever an earlier agent left that no group owns goes.
      for (const hex of this.frontends.hexKeys()) if (!this.owner.fe.has(hex)) fe.deletes.push(Buffer.from(hex, 'hex'));
      for (const hex of this.backends.hexKeys()) if (!this.owner.be.has(hex)) be.deletes.push(Buffer.from(hex, 'hex'));
      for (const id of this.luts.ids()) if (!this.owner.lut.has(id)) goneTables.push(id);
      this.grouped = true;
    }

    this.backends.applyUpserts(be);
    const lutWrites = this.luts.applyWrites(tables);
    this.frontends.applyUpserts(fe);
    this.frontends.applyDeletes(fe);
    const lutDeletes = this.luts.remove(goneTables);
    this.backends.applyDeletes(be);
    this.last = new Map(groups);
    return this.result(fe, be, lutWrites, lutDeletes);
  }

  private result(fe: MapDiff, be: MapDiff, lutWrites: number, lutDeletes: number): SyncResult {
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
