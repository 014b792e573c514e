/**
 * A BPF map by file descriptor: raw byte operations, batch updates, iteration, and a
 * typed view through struct codecs. Counts its own writes so callers (and tests) can
 * see how much a reconcile touched.
 */
import type { StructCodec } from '../codec/struct.js';
import { BpfError } from './errors.js';
import * as ffi from './libbpf.js';

export const MAP_TYPE = {
  HASH: 1,
  ARRAY: 2,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  RINGBUF: 27,
} as const;

export interface MapInfo {
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

export interface MapWriteStats {
  updates: number;
  deletes: number;
}

const EINVAL = 22;
const ENOTSUPP = 524; // kernel-internal, seen by user space for unsupported batch ops
const EOPNOTSUPP = 95;

export class BpfMap {
  readonly stats: MapWriteStats = { updates: 0, deletes: 0 };
  private batchUnsupported = false;
  private closed = false;

  constructor(
    readonly name: string,
    readonly fd: number,
    readonly info: MapInfo,
    /** True when this object opened the fd itself (from a pin) and must close it. */
    private readonly ownsFd: boolean,
  ) {}

  /**
   * Opens a pinned map. With `expect`, checks type and sizes so a stale layout is
   * refused instead of misread.
   */
  static fromPin(path: string, expect?: Partial<MapInfo>): BpfMap {
    return BpfMap.fromFd(ffi.bpf_obj_get(path), expect, path);
  }

  /** Takes ownership of a map fd (closed by close()); checks `expect` like fromPin. */
  static fromFd(fd: number, expect?: Partial<MapInfo>, what = `map fd ${fd}`): BpfMap {
    try {
      // struct bpf_map_info: type, id, key_size, value_size, max_entries, map_flags, name[16]
      const raw = ffi.bpf_obj_get_info_by_fd(fd, 80);
      const info: MapInfo = {
        type: raw.readUInt32LE(0),
        keySize: raw.readUInt32LE(8),
        valueSize: raw.readUInt32LE(12),
        maxEntries: raw.readUInt32LE(16),
      };
      for (const k of Object.keys(expect ?? {}) as (keyof MapInfo)[]) {
        if (expect![k] !== undefined && expect![k] !== info[k]) {
          throw new BpfError('open map', EINVAL, [], `${what}: ${k} is ${info[k]}, expected ${expect![k]}`);
        }
      }
      const name = raw.subarray(24, 40).toString('utf8').replace(/\0.*$/s, '');
      return new BpfMap(name, fd, info, true);
    } catch (err) {
      ffi.closeFd(fd);
      throw err;
    }
  }

  /**
   * A new map outside any object (the inner maps of a map-in-map), owned by this process
   * until something else (an outer map) holds it too.
   */
  static create(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, flags = 0): BpfMap {
    return BpfMap.fromFd(ffi.bpf_map_create(type, name, keySize, valueSize, maxEntries, flags));
  }

  get isPerCpu(): boolean {
    return (
      this.info.type === MAP_TYPE.PERCPU_ARRAY ||
      this.info.type === MAP_TYPE.PERCPU_HASH ||
      this.info.type === MAP_TYPE.LRU_PERCPU_HASH
    );
  }

  /** Bytes a lookup returns: per-CPU maps return one 8-byte-aligned slot per possible CPU. */
  get valueBufferSize(): number {
    return this.isPerCpu ? Math.ceil(this.info.valueSize / 8) * 8 * possibleCpus() : this.info.valueSize;
  }

  lookup(key: Buffer): Buffer | undefined {
    const value = Buffer.alloc(this.valueBufferSize);
    return ffi.bpf_map_lookup_elem(this.fd, key, value) ? value : undefined;
  }

  /** Per-CPU maps: one value per possible CPU. */
  lookupPerCpu(key: Buffer): Buffer[] | undefined {
    const all = this.lookup(key);
    if (!all) return undefined;
    const slot = Math.ceil(this.info.valueSize / 8) * 8;
    const out: Buffer[] = [];
    for (let off = 0; off + slot <= all.length; off += slot) out.push(all.subarray(off, off + this.info.valueSize));
    return out;
  }

  update(key: Buffer, value: Buffer, flags = ffi.BPF_ANY): void {
    ffi.bpf_map_update_elem(this.fd, key, value, flags);
    this.stats.updates++;
  }

  /** Returns false when the key was absent. */
  delete(key: Buffer): boolean {
    const existed = ffi.bpf_map_delete_elem(this.fd, key);
    if (existed) this.stats.deletes++;
    return existed;
  }

  /**
   * Writes many entries: one BPF_MAP_UPDATE_BATCH where the map type supports it
   * (hash maps), element by element otherwise (LPM tries).
   */
  updateMany(entries: readonly (readonly [Buffer, Buffer])[]): void {
    if (entries.length === 0) return;
    if (!this.batchUnsupported && !this.isPerCpu) {
      const keys = Buffer.concat(entries.map((e) => e[0]));
      const values = Buffer.concat(entries.map((e) => e[1]));
      try {
        const done = ffi.bpf_map_update_batch(this.fd, keys, values, entries.length);
        this.stats.updates += done;
        if (done === entries.length) return;
        entries = entries.slice(done);
      } catch (err) {
        if (!(err instanceof BpfError) || ![EINVAL, ENOTSUPP, EOPNOTSUPP].includes(err.errno)) throw err;
        this.batchUnsupported = true;
      }
    }
    for (const [k, v] of entries) this.update(k, v);
  }

  /**
   * Writes `count` entries laid out back to back in `keys` and `values` (one batch call
   * where the map type has it, entry by entry otherwise).
   */
  updatePacked(keys: Buffer, values: Buffer, count: number): void {
    if (count === 0) return;
    if (!this.batchUnsupported && !this.isPerCpu) {
      try {
        const done = ffi.bpf_map_update_batch(this.fd, keys, values, count);
        this.stats.updates += done;
        if (done === count) return;
      } catch (err) {
        if (!(err instanceof BpfError) || ![EINVAL, ENOTSUPP, EOPNOTSUPP].includes(err.errno)) throw err;
        this.batchUnsupported = true;
      }
    }
    const ks = this.info.keySize;
    const vs = this.info.valueSize;
    for (let i = 0; i < count; i++) this.update(keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * vs, (i + 1) * vs));
  }

  deleteMany(keys: readonly Buffer[]): void {
    for (const k of keys) this.delete(k);
  }

  *keys(): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (let i = 0; i <= this.info.maxEntries + 1; i++) {
      const next = Buffer.alloc(this.info.keySize);
      if (!ffi.bpf_map_get_next_key(this.fd, prev, next)) return;
      yield next;
      prev = next;
    }
  }

  /** Every entry. Keys deleted while iterating may be skipped, as with any BPF map walk. */
  *entries(): Generator<[Buffer, Buffer]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) yield [k, v];
    }
  }

  /**
   * Every value of an array map in index order, read with one batch call (entry by
   * entry where the kernel has no batch lookup).
   */
  arrayValues(): Buffer[] {
    const n = this.info.maxEntries;
    try {
      const r = ffi.bpf_map_lookup_batch(this.fd, this.info.keySize, this.info.valueSize, n);
      if (r.n === n) return Array.from({ length: n }, (_, i) => r.values.subarray(i * this.info.valueSize, (i + 1) * this.info.valueSize));
    } catch (err) {
      if (!(err instanceof BpfError) || ![EINVAL, ENOTSUPP, EOPNOTSUPP].includes(err.errno)) throw err;
    }
    const key = Buffer.alloc(4);
    return Array.from({ length: n }, (_, i) => {
      key.writeUInt32LE(i);
      return this.lookup(key) ?? Buffer.alloc(this.info.valueSize);
    });
  }

  typed<K, V>(key: StructCodec<K>, value: StructCodec<V>): TypedMap<K, V> {
    return new TypedMap(this, key, value);
  }

  close(): void {
    if (this.ownsFd && !this.closed) ffi.closeFd(this.fd);
    this.closed = true;
  }
}

/**
 * A hash or array of maps: each value is an inner map. User space writes an inner map's
 * fd and reads back its kernel id; `inner()` opens the map behind an id.
 */
export class MapOfMaps {
  constructor(readonly outer: BpfMap) {}

  /** The inner map at key, opened (the caller closes it), or undefined. */
  inner(key: Buffer): BpfMap | undefined {
    const v = this.outer.lookup(key);
    return v ? BpfMap.fromFd(ffi.bpf_map_get_fd_by_id(v.readUInt32LE(0))) : undefined;
  }

  /** Puts `map` at key, replacing whatever was there in one update (atomic for readers). */
  set(key: Buffer, map: BpfMap): void {
    const fd = Buffer.alloc(4);
    fd.writeUInt32LE(map.fd);
    this.outer.update(key, fd);
  }

  delete(key: Buffer): boolean {
    return this.outer.delete(key);
  }

  keys(): Generator<Buffer> {
    return this.outer.keys();
  }
}

/** A map seen through the codecs of its key and value structs. */
export class TypedMap<K, V> {
  constructor(
    readonly raw: BpfMap,
    readonly keyCodec: StructCodec<K>,
    readonly valueCodec: StructCodec<V>,
  ) {
    if (keyCodec.size !== raw.info.keySize || valueCodec.size !== raw.info.valueSize) {
      throw new BpfError(
        'typed map',
        EINVAL,
        [],
        `${raw.name}: map has key ${raw.info.keySize}/value ${raw.info.valueSize} bytes, ` +
          `codecs ${keyCodec.cName} ${keyCodec.size}/${valueCodec.cName} ${valueCodec.size}`,
      );
    }
  }

  lookup(k: K): V | undefined {
    const v = this.raw.lookup(this.keyCodec.encode(k));
    return v ? this.valueCodec.decode(v) : undefined;
  }

  update(k: K, v: V): void {
    this.raw.update(this.keyCodec.encode(k), this.valueCodec.encode(v));
  }

  delete(k: K): boolean {
    return this.raw.delete(this.keyCodec.encode(k));
  }

  *entries(): Generator<[K, V]> {
    for (const [k, v] of this.raw.entries()) yield [this.keyCodec.decode(k), this.valueCodec.decode(v)];
  }
}

let cpus: number | undefined;
export function possibleCpus(): number {
  cpus ??= ffi.libbpf_num_possible_cpus();
  return cpus;
}
