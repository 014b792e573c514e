/**
 * BPF objects in two layers:
 *   ObjectSpec  what an object file declares (maps, programs, rodata knobs), read
 *               without loading anything: no root, same answer every time
 *   BpfObject   the object loaded into the kernel: map and program fds; close() it
 *
 * Pinning is explicit: with `pinDir`, every map is pinned at `<pinDir>/<map name>`, and
 * a map already pinned there is reused (libbpf checks type, sizes and flags, and refuses
 * a mismatch). That is how a restarted agent adopts the state of the one before it.
 */
import { mkdirSync } from 'node:fs';
import { Btf, type BtfVar } from './btf.js';
import { BpfError, VerifierError } from './errors.js';
import * as ffi from './libbpf.js';
import { BpfMap, type MapInfo } from './map.js';

export interface MapSpec extends MapInfo {
  name: string;
}

export interface ProgramSpec {
  name: string;
  section: string;
}

export interface ObjectSpec {
  path: string;
  maps: MapSpec[];
  programs: ProgramSpec[];
  /** const volatile globals in .rodata, settable before load. */
  rodata: BtfVar[];
}

/** Internal maps libbpf makes for data sections; not part of the datapath's maps. */
function isInternalMap(name: string): boolean {
  return name.includes('.');
}

export function readObjectSpec(path: string): ObjectSpec {
  const obj = ffi.bpf_object__open_file(path);
  try {
    return describe(path, obj);
  } finally {
    ffi.bpf_object__close(obj);
  }
}

function describe(path: string, obj: ffi.Handle): ObjectSpec {
  const maps = ffi
    .bpf_object__maps(obj)
    .map((m) => ffi.bpf_map__describe(m))
    .filter((m) => !isInternalMap(m.name))
    .map(({ name, type, keySize, valueSize, maxEntries }) => ({ name, type, keySize, valueSize, maxEntries }));
  const programs = ffi
    .bpf_object__programs(obj)
    .map((p) => ({ name: ffi.bpf_program__name(p), section: ffi.bpf_program__section_name(p) }));
  const btfHandle = ffi.bpf_object__btf(obj);
  const rodata = btfHandle ? Btf.fromHandle(btfHandle).datasec('.rodata') : [];
  return { path, maps, programs, rodata };
}

export interface LoadOptions {
  /** Pin every map here (created if missing); maps already pinned here are reused. */
  pinDir?: string;
  /** Resize maps before load, by name. */
  maxEntries?: Readonly<Record<string, number>>;
  /** Values for const volatile .rodata knobs, by variable name. */
  rodata?: Readonly<Record<string, number | bigint>>;
  /** Verifier log level on the first attempt (0: log only on failure). */
  logLevel?: number;
  /** Size of the verifier log buffer kept on failure. */
  logSize?: number;
}

export class BpfProgram {
  constructor(
    readonly name: string,
    readonly section: string,
    readonly fd: number,
  ) {}

  /** Kernel id of the loaded program (struct bpf_prog_info.id). */
  id(): number {
    return ffi.bpf_obj_get_info_by_fd(this.fd, 64).readUInt32LE(4);
  }

  /** A program already loaded (by anyone), by kernel id; release() it when done. */
  static byId(id: number): BpfProgram {
    return new BpfProgram(`prog ${id}`, '', ffi.bpf_prog_get_fd_by_id(id));
  }

  /** Closes the fd of a program from byId (an object's programs belong to the object). */
  release(): void {
    ffi.closeFd(this.fd);
  }
}

export class BpfObject {
  private closed = false;

  private constructor(
    private readonly handle: ffi.Handle,
    readonly spec: ObjectSpec,
    readonly maps: ReadonlyMap<string, BpfMap>,
    readonly programs: ReadonlyMap<string, BpfProgram>,
    /** Maps that were already pinned and were adopted rather than created. */
    readonly adoptedMaps: readonly string[],
  ) {}

  static load(path: string, opts: LoadOptions = {}): BpfObject {
    const logBuf = Buffer.alloc(opts.logSize ?? 4 * 1024 * 1024);
    const obj = ffi.bpf_object__open_file(path, { logBuf, logLevel: opts.logLevel ?? 0 });
    try {
      const spec = describe(path, obj);
      const handles = new Map(ffi.bpf_object__maps(obj).map((m) => [ffi.bpf_map__describe(m).name, m]));
      for (const [name, n] of Object.entries(opts.maxEntries ?? {})) {
        const m = handles.get(name);
        if (!m) throw new BpfError('load', 2, [], `${path}: no map named ${name} to resize`);
        ffi.bpf_map__set_max_entries(m, n);
      }
      if (opts.rodata && Object.keys(opts.rodata).length > 0) setRodata(obj, spec, opts.rodata);
      if (opts.pinDir) {
        mkdirSync(opts.pinDir, { recursive: true });
        for (const m of spec.maps) ffi.bpf_map__set_pin_path(handles.get(m.name)!, `${opts.pinDir}/${m.name}`);
      }
      // Which pins exist before load tells adopted maps from new ones.
      const preexisting = opts.pinDir ? spec.maps.filter((m) => pinExists(`${opts.pinDir}/${m.name}`)).map((m) => m.name) : [];
      try {
        ffi.bpf_object__load(obj);
      } catch (err) {
        // libbpf names the program the kernel refused; the verifier's words are in logBuf.
        const refused = err instanceof BpfError ? err.libbpfLog.map((l) => /prog '([^']+)': BPF program load failed/.exec(l)?.[1]).find(Boolean) : undefined;
        if (refused) {
          const end = logBuf.indexOf(0);
          throw new VerifierError(refused, logBuf.subarray(0, end < 0 ? logBuf.length : end).toString('utf8'), { cause: err });
        }
        throw err;
      }
      const maps = new Map<string, BpfMap>();
      for (const m of spec.maps) {
        maps.set(m.name, new BpfMap(m.name, ffi.bpf_map__fd(handles.get(m.name)!), { ...ffi.bpf_map__describe(handles.get(m.name)!) }, false));
      }
      const programs = new Map<string, BpfProgram>();
      for (const p of ffi.bpf_object__programs(obj)) {
        const name = ffi.bpf_program__name(p);
        programs.set(name, new BpfProgram(name, ffi.bpf_program__section_name(p), ffi.bpf_program__fd(p)));
      }
      return new BpfObject(obj, spec, maps, programs, preexisting);
    } catch (err) {
      ffi.bpf_object__close(obj);
      throw err;
    }
  }

  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (!m) throw new BpfError('map', 2, [], `${this.spec.path}: no map named ${name}`);
    return m;
  }

  program(name: string): BpfProgram {
    const p = this.programs.get(name);
    if (!p) throw new BpfError('program', 2, [], `${this.spec.path}: no program named ${name}`);
    return p;
  }

  /** Closes fds held by this process. Pinned maps and attached programs live on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    ffi.bpf_object__close(this.handle);
  }
}

function pinExists(path: string): boolean {
  try {
    ffi.closeFd(ffi.bpf_obj_get(path));
    return true;
  } catch {
    return false;
  }
}

function setRodata(obj: ffi.Handle, spec: ObjectSpec, values: Readonly<Record<string, number | bigint>>): void {
  const map = ffi.bpf_object__find_map_by_name(obj, '.rodata');
  if (!map) throw new BpfError('set rodata', 2, [], `${spec.path}: object has no .rodata`);
  const data = ffi.bpf_map__initial_value(map);
  for (const [name, value] of Object.entries(values)) {
    const v = spec.rodata.find((r) => r.name === name);
    if (!v) throw new BpfError('set rodata', 2, [], `${spec.path}: no .rodata variable ${name}`);
    switch (v.size) {
      case 1: data.writeUInt8(Number(value), v.offset); break;
      case 2: data.writeUInt16LE(Number(value), v.offset); break;
      case 4: data.writeUInt32LE(Number(value), v.offset); break;
      case 8: data.writeBigUInt64LE(BigInt(value), v.offset); break;
      default: throw new BpfError('set rodata', 22, [], `${name}: ${v.size}-byte variables are not settable`);
    }
  }
  ffi.bpf_map__set_initial_value(map, data);
}
