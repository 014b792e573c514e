/**
 * Reading BTF: struct layouts, enum values and data-section variables, from a BPF
 * object file (no kernel, no root) or from an opened object (where libbpf has already
 * filled in data-section offsets). Used to check the TypeScript codecs against the
 * compiled object and to find run-time knobs in .rodata.
 */
import * as ffi from './libbpf.js';

const KIND = {
  INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8,
  VOLATILE: 9, CONST: 10, RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14,
  DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;

export interface BtfMember {
  name: string;
  /** Byte offset (bitfields are not used in shared structs and are rejected). */
  offset: number;
  size: number;
}

export interface BtfStruct {
  name: string;
  size: number;
  members: BtfMember[];
}

export interface BtfVar {
  name: string;
  offset: number;
  size: number;
}

interface RawType {
  id: number;
  name: string;
  kind: number;
  vlen: number;
  kindFlag: boolean;
  sizeOrType: number;
  bytes: Buffer;
}

export class Btf {
  private readonly byName = new Map<string, RawType[]>();

  private constructor(
    private readonly handle: ffi.Handle,
    private readonly owned: boolean,
  ) {
    const n = ffi.btf__type_cnt(handle);
    for (let id = 1; id < n; id++) {
      const t = this.raw(id);
      if (!t.name) continue;
      const list = this.byName.get(t.name) ?? [];
      list.push(t);
      this.byName.set(t.name, list);
    }
  }

  /** BTF of an object file on disk. Data-section offsets are not final here. */
  static fromFile(path: string): Btf {
    return new Btf(ffi.btf__parse(path), true);
  }

  /** BTF owned by an opened libbpf object (freed with it). */
  static fromHandle(handle: ffi.Handle): Btf {
    return new Btf(handle, false);
  }

  private raw(id: number): RawType {
    const head = ffi.btf__type_bytes(this.handle, id, 0);
    const info = head.readUInt32LE(4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const trailing =
      kind === KIND.STRUCT || kind === KIND.UNION || kind === KIND.DATASEC ? vlen * 12
      : kind === KIND.ENUM ? vlen * 8
      : kind === KIND.ENUM64 ? vlen * 12
      : kind === KIND.ARRAY ? 12
      : kind === KIND.INT || kind === KIND.VAR || kind === KIND.DECL_TAG ? 4
      : kind === KIND.FUNC_PROTO ? vlen * 8
      : 0;
    const bytes = ffi.btf__type_bytes(this.handle, id, trailing);
    return {
      id,
      name: ffi.btf__name_by_offset(this.handle, bytes.readUInt32LE(0)),
      kind,
      vlen,
      kindFlag: (info >>> 31) === 1,
      sizeOrType: bytes.readUInt32LE(8),
      bytes,
    };
  }

  private find(name: string, kind: number): RawType | undefined {
    return this.byName.get(name)?.find((t) => t.kind === kind);
  }

  struct(name: string): BtfStruct | undefined {
    const t = this.find(name, KIND.STRUCT);
    if (!t) return undefined;
    const members: BtfMember[] = [];
    for (let i = 0; i < t.vlen; i++) {
      const o = 12 + i * 12;
      const nameOff = t.bytes.readUInt32LE(o);
      const type = t.bytes.readUInt32LE(o + 4);
      const bitOffset = t.kindFlag ? t.bytes.readUInt32LE(o + 8) & 0xffffff : t.bytes.readUInt32LE(o + 8);
      const bitfield = t.kindFlag ? t.bytes.readUInt32LE(o + 8) >>> 24 : 0;
      if (bitfield !== 0 || bitOffset % 8 !== 0) throw new Error(`btf: ${name}: bitfield members are not supported`);
      members.push({
        name: ffi.btf__name_by_offset(this.handle, nameOff),
        offset: bitOffset / 8,
        size: ffi.btf__resolve_size(this.handle, type),
      });
    }
    return { name, size: t.sizeOrType, members };
  }

  /** Enumerators of a named enum (signed when BTF's kind flag says so, unsigned otherwise). */
  enum(name: string): Record<string, number> | undefined {
    const t = this.find(name, KIND.ENUM);
    if (!t) return undefined;
    const out: Record<string, number> = {};
    for (let i = 0; i < t.vlen; i++) {
      const o = 12 + i * 8;
      const v = t.kindFlag ? t.bytes.readInt32LE(o + 4) : t.bytes.readUInt32LE(o + 4);
      out[ffi.btf__name_by_offset(this.handle, t.bytes.readUInt32LE(o))] = v;
    }
    return out;
  }

  /** Variables of a data section (.rodata, .maps) with their offsets. */
  datasec(name: string): BtfVar[] {
    const t = this.find(name, KIND.DATASEC);
    if (!t) return [];
    const out: BtfVar[] = [];
    for (let i = 0; i < t.vlen; i++) {
      const o = 12 + i * 12;
      const v = this.raw(t.bytes.readUInt32LE(o));
      out.push({ name: v.name, offset: t.bytes.readUInt32LE(o + 4), size: t.bytes.readUInt32LE(o + 8) });
    }
    return out;
  }

  close(): void {
    if (this.owned) ffi.btf__free(this.handle);
  }
}
