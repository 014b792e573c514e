/**
 * Fixed-layout struct codecs mirroring C structs shared with the BPF programs.
 * Fields are listed in the C order with explicit padding (`pad(n)`), so the layout
 * test can compare every offset with the object's BTF. Integers are host order
 * (little-endian on every architecture tcplane runs on) unless named `be*`.
 */

export interface FieldType<T> {
  readonly size: number;
  /** C-ish name of the type, for messages. */
  readonly kind: string;
  read(buf: Buffer, off: number): T;
  write(buf: Buffer, off: number, v: T): void;
}

export const u8: FieldType<number> = {
  size: 1,
  kind: 'u8',
  read: (b, o) => b.readUInt8(o),
  write: (b, o, v) => void b.writeUInt8(v, o),
};
export const u16: FieldType<number> = {
  size: 2,
  kind: 'u16',
  read: (b, o) => b.readUInt16LE(o),
  write: (b, o, v) => void b.writeUInt16LE(v, o),
};
/** A 16-bit field kept in network byte order (ports). */
export const be16: FieldType<number> = {
  size: 2,
  kind: 'be16',
  read: (b, o) => b.readUInt16BE(o),
  write: (b, o, v) => void b.writeUInt16BE(v, o),
};
export const u32: FieldType<number> = {
  size: 4,
  kind: 'u32',
  read: (b, o) => b.readUInt32LE(o),
  write: (b, o, v) => void b.writeUInt32LE(v >>> 0, o),
};
export const u64: FieldType<bigint> = {
  size: 8,
  kind: 'u64',
  read: (b, o) => b.readBigUInt64LE(o),
  write: (b, o, v) => void b.writeBigUInt64LE(v, o),
};

export function bytes(n: number): FieldType<Buffer> {
  return {
    size: n,
    kind: `u8[${n}]`,
    read: (b, o) => Buffer.from(b.subarray(o, o + n)),
    write: (b, o, v) => {
      if (v.length > n) throw new RangeError(`field of ${n} bytes given ${v.length}`);
      v.copy(b, o);
    },
  };
}

const PAD = Symbol('pad');
export interface PadType extends FieldType<undefined> {
  readonly [PAD]: true;
}
/** Explicit padding: always written as zero, not part of the decoded value. */
export function pad(n: number): PadType {
  return { size: n, kind: `u8[${n}]`, [PAD]: true, read: () => undefined, write: () => undefined };
}

type Fields = Record<string, FieldType<unknown>>;
type ValueOf<F extends Fields> = {
  [K in keyof F as F[K] extends PadType ? never : K]: F[K] extends FieldType<infer T> ? T : never;
};

export interface StructField {
  name: string;
  offset: number;
  size: number;
  kind: string;
}

export interface StructCodec<T> {
  /** The C struct this codec mirrors. */
  readonly cName: string;
  readonly size: number;
  readonly fields: readonly StructField[];
  encode(v: T): Buffer;
  encodeInto(v: T, buf: Buffer, off: number): void;
  decode(buf: Buffer, off?: number): T;
}

export type Infer<C> = C extends StructCodec<infer T> ? T : never;

/**
 * Declares a struct. Fields are packed in order with no implicit padding: write the
 * C struct's padding out as pad(n), as the C headers do.
 */
export function struct<F extends Fields>(cName: string, def: F): StructCodec<ValueOf<F>> {
  const fields: (StructField & { type: FieldType<unknown>; isPad: boolean })[] = [];
  let off = 0;
  for (const [name, type] of Object.entries(def)) {
    fields.push({ name, offset: off, size: type.size, kind: type.kind, type, isPad: PAD in type });
    off += type.size;
  }
  const size = off;
  const encodeInto = (v: ValueOf<F>, buf: Buffer, base: number) => {
    const rec = v as Record<string, unknown>;
    for (const f of fields) {
      if (f.isPad) continue;
      const x = rec[f.name];
      if (x === undefined) throw new TypeError(`${cName}.${f.name}: missing`);
      f.type.write(buf, base + f.offset, x);
    }
  };
  return {
    cName,
    size,
    fields: fields.map(({ name, offset, size: s, kind }) => ({ name, offset, size: s, kind })),
    encodeInto,
    encode(v) {
      const buf = Buffer.alloc(size);
      encodeInto(v, buf, 0);
      return buf;
    },
    decode(buf, base = 0) {
      if (buf.length - base < size) throw new RangeError(`${cName}: need ${size} bytes, have ${buf.length - base}`);
      const out: Record<string, unknown> = {};
      for (const f of fields) if (!f.isPad) out[f.name] = f.type.read(buf, base + f.offset);
      return out as ValueOf<F>;
    },
  };
}

/** A bare scalar as a map key or value (`__u32` ids), with the StructCodec interface. */
export function scalar<T>(cName: string, type: FieldType<T>): StructCodec<T> {
  const encodeInto = (v: T, buf: Buffer, off: number) => type.write(buf, off, v);
  return {
    cName,
    size: type.size,
    fields: [{ name: 'value', offset: 0, size: type.size, kind: type.kind }],
    encodeInto,
    encode(v) {
      const buf = Buffer.alloc(type.size);
      encodeInto(v, buf, 0);
      return buf;
    },
    decode(buf, base = 0) {
      if (buf.length - base < type.size) throw new RangeError(`${cName}: need ${type.size} bytes, have ${buf.length - base}`);
      return type.read(buf, base);
    },
  };
}
