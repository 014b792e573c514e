/**
 * The FFI boundary: the only module that imports koffi. It declares the libbpf (1.1+,
 * Debian's libbpf1) and libc functions tcplane uses, in libbpf's own names and
 * argument order, sets every option struct's `sz`, and turns failures into typed
 * errors where they come out. Nothing above this file sees a pointer: native handles
 * are opaque `Handle` values and memory is passed as Buffers.
 *
 * libbpf conventions relied on (libbpf ≥ 1.0, "strict mode" always on):
 *   - int-returning calls return -errno on failure;
 *   - pointer-returning calls return NULL and set errno.
 */
import koffi from 'koffi';
import { BpfError } from './errors.js';

/** An opaque native pointer (bpf_object *, bpf_map *, struct btf *, …). */
export type Handle = unknown & { readonly __handle: unique symbol };

const libbpf = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

koffi.opaque('bpf_object');
koffi.opaque('bpf_map');
koffi.opaque('bpf_program');
koffi.opaque('btf');
koffi.opaque('ring_buffer');

const bpf_object_open_opts = koffi.struct('bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
  _attach_prog_fd_removed: 'uint32_t',
  kconfig: 'const char *',
  btf_custom_path: 'const char *',
  kernel_log_buf: 'void *',
  kernel_log_size: 'size_t',
  kernel_log_level: 'uint32_t',
});

const bpf_test_run_opts = koffi.struct('bpf_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});

const bpf_map_batch_opts = koffi.struct('bpf_map_batch_opts', {
  sz: 'size_t',
  elem_flags: 'uint64_t',
  flags: 'uint64_t',
});

const bpf_map_create_opts = koffi.struct('bpf_map_create_opts', {
  sz: 'size_t',
  btf_fd: 'uint32_t',
  btf_key_type_id: 'uint32_t',
  btf_value_type_id: 'uint32_t',
  btf_vmlinux_value_type_id: 'uint32_t',
  inner_map_fd: 'uint32_t',
  map_flags: 'uint32_t',
  map_extra: 'uint64_t',
  numa_node: 'uint32_t',
  map_ifindex: 'uint32_t',
});

const bpf_link_update_opts = koffi.struct('bpf_link_update_opts', {
  sz: 'size_t',
  flags: 'uint32_t',
  old_prog_fd: 'uint32_t',
});

const bpf_tc_hook = koffi.struct('bpf_tc_hook', {
  sz: 'size_t',
  ifindex: 'int',
  attach_point: 'int',
  parent: 'uint32_t',
});

const bpf_tc_opts = koffi.struct('bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});

// libbpf's print callback: int (*)(enum libbpf_print_level, const char *fmt, va_list ap).
// On x86-64 and arm64 SysV a va_list parameter is passed as a pointer, which vsnprintf
// accepts back unchanged.
const libbpf_print_fn = koffi.proto('int libbpf_print_fn(int level, const char *fmt, void *ap)');
const ring_buffer_sample_fn = koffi.proto('int ring_buffer_sample_fn(void *ctx, void *data, size_t size)');

const fn = {
  // object (libbpf.h)
  bpf_object__open_file: libbpf.func('bpf_object *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)'),
  bpf_object__load: libbpf.func('int bpf_object__load(bpf_object *obj)'),
  bpf_object__close: libbpf.func('void bpf_object__close(bpf_object *obj)'),
  bpf_object__btf: libbpf.func('btf *bpf_object__btf(bpf_object *obj)'),
  bpf_object__next_map: libbpf.func('bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *prev)'),
  bpf_object__next_program: libbpf.func('bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)'),
  bpf_object__find_map_by_name: libbpf.func('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
  bpf_object__find_program_by_name: libbpf.func('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
  // maps (libbpf.h)
  bpf_map__name: libbpf.func('const char *bpf_map__name(bpf_map *map)'),
  bpf_map__fd: libbpf.func('int bpf_map__fd(bpf_map *map)'),
  bpf_map__type: libbpf.func('int bpf_map__type(bpf_map *map)'),
  bpf_map__key_size: libbpf.func('uint32_t bpf_map__key_size(bpf_map *map)'),
  bpf_map__value_size: libbpf.func('uint32_t bpf_map__value_size(bpf_map *map)'),
  bpf_map__max_entries: libbpf.func('uint32_t bpf_map__max_entries(bpf_map *map)'),
  bpf_map__set_max_entries: libbpf.func('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
  bpf_map__set_pin_path: libbpf.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
  bpf_map__is_pinned: libbpf.func('bool bpf_map__is_pinned(bpf_map *map)'),
  bpf_map__initial_value: libbpf.func('const void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)'),
  bpf_map__set_initial_value: libbpf.func('int bpf_map__set_initial_value(bpf_map *map, const void *data, size_t size)'),
  // programs (libbpf.h)
  bpf_program__name: libbpf.func('const char *bpf_program__name(bpf_program *prog)'),
  bpf_program__section_name: libbpf.func('const char *bpf_program__section_name(bpf_program *prog)'),
  bpf_program__fd: libbpf.func('int bpf_program__fd(bpf_program *prog)'),
  // tc (libbpf.h)
  bpf_tc_hook_create: libbpf.func('int bpf_tc_hook_create(bpf_tc_hook *hook)'),
  bpf_tc_attach: libbpf.func('int bpf_tc_attach(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),
  bpf_tc_detach: libbpf.func('int bpf_tc_detach(const bpf_tc_hook *hook, const bpf_tc_opts *opts)'),
  bpf_tc_query: libbpf.func('int bpf_tc_query(const bpf_tc_hook *hook, _Inout_ bpf_tc_opts *opts)'),
  // low level (bpf.h)
  bpf_map_lookup_elem: libbpf.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
  bpf_map_update_elem: libbpf.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
  bpf_map_delete_elem: libbpf.func('int bpf_map_delete_elem(int fd, const void *key)'),
  bpf_map_get_next_key: libbpf.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
  bpf_map_update_batch: libbpf.func('int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)'),
  bpf_map_lookup_batch: libbpf.func(
    'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)',
  ),
  bpf_map_delete_batch: libbpf.func('int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const bpf_map_batch_opts *opts)'),
  bpf_map_create: libbpf.func(
    'int bpf_map_create(int map_type, const char *map_name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const bpf_map_create_opts *opts)',
  ),
  bpf_map_get_fd_by_id: libbpf.func('int bpf_map_get_fd_by_id(uint32_t id)'),
  bpf_prog_get_fd_by_id: libbpf.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
  bpf_obj_pin: libbpf.func('int bpf_obj_pin(int fd, const char *pathname)'),
  bpf_obj_get: libbpf.func('int bpf_obj_get(const char *pathname)'),
  bpf_obj_get_info_by_fd: libbpf.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *info_len)'),
  bpf_link_create: libbpf.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, const void *opts)'),
  bpf_link_update: libbpf.func('int bpf_link_update(int link_fd, int new_prog_fd, const bpf_link_update_opts *opts)'),
  bpf_link_detach: libbpf.func('int bpf_link_detach(int link_fd)'),
  bpf_prog_test_run_opts: libbpf.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)'),
  libbpf_num_possible_cpus: libbpf.func('int libbpf_num_possible_cpus(void)'),
  // ring buffer (libbpf.h)
  ring_buffer__new: libbpf.func('ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn *sample_cb, void *ctx, const void *opts)'),
  ring_buffer__consume: libbpf.func('int ring_buffer__consume(ring_buffer *rb)'),
  ring_buffer__free: libbpf.func('void ring_buffer__free(ring_buffer *rb)'),
  libbpf_set_print: libbpf.func('void *libbpf_set_print(libbpf_print_fn *fn)'),
  // BTF (btf.h)
  btf__parse: libbpf.func('btf *btf__parse(const char *path, void *btf_ext)'),
  btf__free: libbpf.func('void btf__free(btf *btf)'),
  btf__type_cnt: libbpf.func('uint32_t btf__type_cnt(btf *btf)'),
  btf__type_by_id: libbpf.func('const void *btf__type_by_id(btf *btf, uint32_t id)'),
  btf__name_by_offset: libbpf.func('const char *btf__name_by_offset(btf *btf, uint32_t offset)'),
  btf__resolve_size: libbpf.func('int64_t btf__resolve_size(btf *btf, uint32_t type_id)'),
  // libc
  close: libc.func('int close(int fd)'),
  if_nametoindex: libc.func('unsigned int if_nametoindex(const char *ifname)'),
  vsnprintf: libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *ap)'),
};

// ---------------------------------------------------------------------------
// libbpf's own messages: captured instead of printed, so errors can carry them.

export type LibbpfLogLevel = 'warn' | 'info' | 'debug';
const LEVELS: LibbpfLogLevel[] = ['warn', 'info', 'debug'];
let printSink: (level: LibbpfLogLevel, line: string) => void = () => undefined;
let recent: string[] = [];
const printBuf = Buffer.alloc(4096);
const printCallback = koffi.register((level: number, fmt: string, ap: unknown): number => {
  const n = fn.vsnprintf(printBuf, printBuf.length, fmt, ap);
  const line = printBuf.subarray(0, Math.max(0, Math.min(n, printBuf.length - 1))).toString('utf8').trimEnd();
  const lvl = LEVELS[level] ?? 'debug';
  if (lvl !== 'debug') {
    recent.push(line);
    if (recent.length > 50) recent = recent.slice(-50);
  }
  printSink(lvl, line);
  return 0;
}, koffi.pointer(libbpf_print_fn));
fn.libbpf_set_print(printCallback);

/** Where libbpf's messages go (default: dropped; warnings are kept for errors). */
export function setLibbpfLogSink(sink: (level: LibbpfLogLevel, line: string) => void): void {
  printSink = sink;
}

/** Clears and returns the libbpf warnings seen since the last call. */
export function takeLibbpfWarnings(): string[] {
  const out = recent;
  recent = [];
  return out;
}

// ---------------------------------------------------------------------------
// Helpers

function errnoNow(): number {
  return koffi.errno();
}

/** Throws a BpfError when an int-returning libbpf call failed (negative errno). */
function check(call: string, rc: number): number {
  if (rc < 0) throw new BpfError(call, -rc, takeLibbpfWarnings());
  return rc;
}

/** Throws a BpfError when a pointer-returning libbpf call returned NULL. */
function checkPtr(call: string, p: unknown): Handle {
  if (p === null || p === undefined || p === 0n || p === 0) {
    throw new BpfError(call, errnoNow() || 22, takeLibbpfWarnings());
  }
  return p as Handle;
}

// ---------------------------------------------------------------------------
// Objects

export interface OpenOptions {
  objectName?: string;
  /** Buffer receiving the verifier / BTF log; must stay alive until load returns. */
  logBuf?: Buffer;
  logLevel?: number;
}

export function bpf_object__open_file(path: string, o: OpenOptions = {}): Handle {
  const opts = {
    sz: koffi.sizeof(bpf_object_open_opts),
    object_name: o.objectName ?? null,
    relaxed_maps: false,
    // Never used: pinning is explicit (bpf_map__set_pin_path), so maps without a pin
    // path are never pinned anywhere.
    pin_root_path: null,
    _attach_prog_fd_removed: 0,
    kconfig: null,
    btf_custom_path: null,
    kernel_log_buf: o.logBuf ?? null,
    kernel_log_size: o.logBuf?.length ?? 0,
    kernel_log_level: o.logLevel ?? 0,
  };
  return checkPtr('bpf_object__open_file', fn.bpf_object__open_file(path, opts));
}

export function bpf_object__load(obj: Handle): void {
  check('bpf_object__load', fn.bpf_object__load(obj));
}

export function bpf_object__close(obj: Handle): void {
  fn.bpf_object__close(obj);
}

export function bpf_object__btf(obj: Handle): Handle | null {
  const p = fn.bpf_object__btf(obj);
  return p ? (p as Handle) : null;
}

export function bpf_object__maps(obj: Handle): Handle[] {
  const out: Handle[] = [];
  for (let m = fn.bpf_object__next_map(obj, null); m; m = fn.bpf_object__next_map(obj, m)) out.push(m as Handle);
  return out;
}

export function bpf_object__programs(obj: Handle): Handle[] {
  const out: Handle[] = [];
  for (let p = fn.bpf_object__next_program(obj, null); p; p = fn.bpf_object__next_program(obj, p)) out.push(p as Handle);
  return out;
}

export function bpf_object__find_map_by_name(obj: Handle, name: string): Handle | null {
  const p = fn.bpf_object__find_map_by_name(obj, name);
  return p ? (p as Handle) : null;
}

export function bpf_object__find_program_by_name(obj: Handle, name: string): Handle | null {
  const p = fn.bpf_object__find_program_by_name(obj, name);
  return p ? (p as Handle) : null;
}

// ---------------------------------------------------------------------------
// Maps (libbpf-level handles, before and after load)

export interface MapDescription {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

export function bpf_map__describe(map: Handle): MapDescription {
  return {
    name: fn.bpf_map__name(map) as string,
    type: fn.bpf_map__type(map) as number,
    keySize: fn.bpf_map__key_size(map) as number,
    valueSize: fn.bpf_map__value_size(map) as number,
    maxEntries: fn.bpf_map__max_entries(map) as number,
  };
}

export function bpf_map__fd(map: Handle): number {
  return check('bpf_map__fd', fn.bpf_map__fd(map));
}

export function bpf_map__set_max_entries(map: Handle, n: number): void {
  check('bpf_map__set_max_entries', fn.bpf_map__set_max_entries(map, n));
}

export function bpf_map__set_pin_path(map: Handle, path: string | null): void {
  check('bpf_map__set_pin_path', fn.bpf_map__set_pin_path(map, path));
}

export function bpf_map__is_pinned(map: Handle): boolean {
  return fn.bpf_map__is_pinned(map) as boolean;
}

/** Copy of an internal map's (.rodata, .data) initial contents. */
export function bpf_map__initial_value(map: Handle): Buffer {
  const size = [0];
  const p = checkPtr('bpf_map__initial_value', fn.bpf_map__initial_value(map, size));
  const n = Number(size[0]);
  return Buffer.from(new Uint8Array(koffi.view(p, n)));
}

export function bpf_map__set_initial_value(map: Handle, data: Buffer): void {
  check('bpf_map__set_initial_value', fn.bpf_map__set_initial_value(map, data, data.length));
}

// ---------------------------------------------------------------------------
// Programs

export function bpf_program__name(prog: Handle): string {
  return fn.bpf_program__name(prog) as string;
}

export function bpf_program__section_name(prog: Handle): string {
  return fn.bpf_program__section_name(prog) as string;
}

export function bpf_program__fd(prog: Handle): number {
  return check('bpf_program__fd', fn.bpf_program__fd(prog));
}

// ---------------------------------------------------------------------------
// Map operations on fds

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
const ENOENT = 2;

/** Fills `value` and returns true, or returns false when the key is absent. */
export function bpf_map_lookup_elem(fd: number, key: Buffer, value: Buffer): boolean {
  const rc = fn.bpf_map_lookup_elem(fd, key, value) as number;
  if (rc === -ENOENT) return false;
  check('bpf_map_lookup_elem', rc);
  return true;
}

export function bpf_map_update_elem(fd: number, key: Buffer, value: Buffer, flags = BPF_ANY): void {
  check('bpf_map_update_elem', fn.bpf_map_update_elem(fd, key, value, flags));
}

/** Returns false when the key was absent. */
export function bpf_map_delete_elem(fd: number, key: Buffer): boolean {
  const rc = fn.bpf_map_delete_elem(fd, key) as number;
  if (rc === -ENOENT) return false;
  check('bpf_map_delete_elem', rc);
  return true;
}

/** Fills `next` with the key after `key` (the first key when key is null); false at the end. */
export function bpf_map_get_next_key(fd: number, key: Buffer | null, next: Buffer): boolean {
  const rc = fn.bpf_map_get_next_key(fd, key, next) as number;
  if (rc === -ENOENT) return false;
  check('bpf_map_get_next_key', rc);
  return true;
}

/** Updates `count` entries laid out back to back; returns how many the kernel processed. */
export function bpf_map_update_batch(fd: number, keys: Buffer, values: Buffer, count: number, elemFlags = BPF_ANY): number {
  const n = [count];
  const opts = { sz: koffi.sizeof(bpf_map_batch_opts), elem_flags: elemFlags, flags: 0 };
  check('bpf_map_update_batch', fn.bpf_map_update_batch(fd, keys, values, n, opts));
  return n[0]!;
}

/**
 * Reads up to `count` entries from the start of the map in one call: keys and values
 * back to back; returns how many it read. (ENOENT means "no more", not failure.)
 */
export function bpf_map_lookup_batch(fd: number, keySize: number, valueSize: number, count: number): { keys: Buffer; values: Buffer; n: number } {
  const keys = Buffer.alloc(keySize * count);
  const values = Buffer.alloc(valueSize * count);
  const outBatch = Buffer.alloc(Math.max(keySize, 8));
  const n = [count];
  const opts = { sz: koffi.sizeof(bpf_map_batch_opts), elem_flags: 0, flags: 0 };
  const rc = fn.bpf_map_lookup_batch(fd, null, outBatch, keys, values, n, opts) as number;
  if (rc !== -ENOENT) check('bpf_map_lookup_batch', rc);
  return { keys, values, n: n[0]! };
}

export function bpf_map_delete_batch(fd: number, keys: Buffer, count: number): number {
  const n = [count];
  const opts = { sz: koffi.sizeof(bpf_map_batch_opts), elem_flags: 0, flags: 0 };
  check('bpf_map_delete_batch', fn.bpf_map_delete_batch(fd, keys, n, opts));
  return n[0]!;
}

/** BPF_F_INNER_MAP: an inner map whose max_entries may differ from the outer map's template. */
export const BPF_F_INNER_MAP = 1 << 12;

/** Creates a map outside any object (inner maps of a map-in-map); returns its fd. */
export function bpf_map_create(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, mapFlags = 0): number {
  const opts = {
    sz: koffi.sizeof(bpf_map_create_opts),
    btf_fd: 0,
    btf_key_type_id: 0,
    btf_value_type_id: 0,
    btf_vmlinux_value_type_id: 0,
    inner_map_fd: 0,
    map_flags: mapFlags,
    map_extra: 0,
    numa_node: 0,
    map_ifindex: 0,
  };
  return check('bpf_map_create', fn.bpf_map_create(type, name, keySize, valueSize, maxEntries, opts));
}

/** An fd for the map with this kernel id (what a map-in-map lookup returns from user space). */
export function bpf_map_get_fd_by_id(id: number): number {
  return check('bpf_map_get_fd_by_id', fn.bpf_map_get_fd_by_id(id));
}

/** An fd for the loaded program with this kernel id. */
export function bpf_prog_get_fd_by_id(id: number): number {
  return check('bpf_prog_get_fd_by_id', fn.bpf_prog_get_fd_by_id(id));
}

export function bpf_obj_pin(fd: number, path: string): void {
  check('bpf_obj_pin', fn.bpf_obj_pin(fd, path));
}

export function bpf_obj_get(path: string): number {
  return check('bpf_obj_get', fn.bpf_obj_get(path));
}

/** Raw info struct (bpf_map_info, bpf_prog_info, bpf_link_info) of at most `size` bytes. */
export function bpf_obj_get_info_by_fd(fd: number, size: number): Buffer {
  const info = Buffer.alloc(size);
  const len = [size];
  check('bpf_obj_get_info_by_fd', fn.bpf_obj_get_info_by_fd(fd, info, len));
  return info.subarray(0, len[0]);
}

export function libbpf_num_possible_cpus(): number {
  return check('libbpf_num_possible_cpus', fn.libbpf_num_possible_cpus());
}

// ---------------------------------------------------------------------------
// Links and tc

/** Kernel attach types tcplane uses (enum bpf_attach_type; tcx needs kernel 6.6). */
export const BPF_TCX_INGRESS = 46;
export const BPF_TCX_EGRESS = 47;

export function bpf_link_create(progFd: number, targetFd: number, attachType: number): number {
  return check('bpf_link_create', fn.bpf_link_create(progFd, targetFd, attachType, null));
}

export function bpf_link_update(linkFd: number, newProgFd: number): void {
  const opts = { sz: koffi.sizeof(bpf_link_update_opts), flags: 0, old_prog_fd: 0 };
  check('bpf_link_update', fn.bpf_link_update(linkFd, newProgFd, opts));
}

export function bpf_link_detach(linkFd: number): void {
  check('bpf_link_detach', fn.bpf_link_detach(linkFd));
}

export const BPF_TC_INGRESS = 1;
export const BPF_TC_EGRESS = 2;
export const BPF_TC_F_REPLACE = 1;
const EEXIST = 17;

function tcHook(ifindex: number, attachPoint: number) {
  return { sz: koffi.sizeof(bpf_tc_hook), ifindex, attach_point: attachPoint, parent: 0 };
}

/** Creates the clsact qdisc; returns false when it already existed. */
export function bpf_tc_hook_create(ifindex: number, attachPoint: number): boolean {
  const rc = fn.bpf_tc_hook_create(tcHook(ifindex, attachPoint)) as number;
  if (rc === -EEXIST) return false;
  check('bpf_tc_hook_create', rc);
  return true;
}

export interface TcFilter {
  handle: number;
  priority: number;
  progId?: number;
}

export function bpf_tc_attach(ifindex: number, attachPoint: number, progFd: number, f: TcFilter, replace: boolean): TcFilter {
  const opts = {
    sz: koffi.sizeof(bpf_tc_opts),
    prog_fd: progFd,
    flags: replace ? BPF_TC_F_REPLACE : 0,
    prog_id: 0,
    handle: f.handle,
    priority: f.priority,
  };
  check('bpf_tc_attach', fn.bpf_tc_attach(tcHook(ifindex, attachPoint), opts));
  return { handle: opts.handle, priority: opts.priority, progId: opts.prog_id };
}

export function bpf_tc_detach(ifindex: number, attachPoint: number, f: TcFilter): void {
  const opts = { sz: koffi.sizeof(bpf_tc_opts), prog_fd: 0, flags: 0, prog_id: 0, handle: f.handle, priority: f.priority };
  check('bpf_tc_detach', fn.bpf_tc_detach(tcHook(ifindex, attachPoint), opts));
}

/** The program id of the filter at handle/priority, or null when there is none. */
export function bpf_tc_query(ifindex: number, attachPoint: number, f: TcFilter): number | null {
  const opts = { sz: koffi.sizeof(bpf_tc_opts), prog_fd: 0, flags: 0, prog_id: 0, handle: f.handle, priority: f.priority };
  const rc = fn.bpf_tc_query(tcHook(ifindex, attachPoint), opts) as number;
  if (rc === -ENOENT || rc === -22 /* EINVAL: no clsact qdisc */) return null;
  check('bpf_tc_query', rc);
  return opts.prog_id;
}

// ---------------------------------------------------------------------------
// BPF_PROG_TEST_RUN

export interface TestRunIn {
  data: Buffer;
  dataOutSize: number;
  ctx?: Buffer;
  ctxOutSize?: number;
  repeat?: number;
}

export interface TestRunOut {
  retval: number;
  durationNs: number;
  data: Buffer;
  ctx?: Buffer;
}

export function bpf_prog_test_run_opts(progFd: number, t: TestRunIn): TestRunOut {
  const dataOut = Buffer.alloc(t.dataOutSize);
  const ctxOut = t.ctxOutSize ? Buffer.alloc(t.ctxOutSize) : null;
  const opts = {
    sz: koffi.sizeof(bpf_test_run_opts),
    data_in: t.data,
    data_out: dataOut,
    data_size_in: t.data.length,
    data_size_out: dataOut.length,
    ctx_in: t.ctx ?? null,
    ctx_out: ctxOut,
    ctx_size_in: t.ctx?.length ?? 0,
    ctx_size_out: ctxOut?.length ?? 0,
    retval: 0,
    repeat: t.repeat ?? 1,
    duration: 0,
    flags: 0,
    cpu: 0,
    batch_size: 0,
  };
  check('bpf_prog_test_run_opts', fn.bpf_prog_test_run_opts(progFd, opts));
  return {
    retval: opts.retval | 0,
    durationNs: opts.duration,
    data: dataOut.subarray(0, opts.data_size_out),
    ctx: ctxOut ? ctxOut.subarray(0, opts.ctx_size_out) : undefined,
  };
}

// ---------------------------------------------------------------------------
// BTF

export function btf__parse(path: string): Handle {
  return checkPtr('btf__parse', fn.btf__parse(path, null));
}

export function btf__free(btf: Handle): void {
  fn.btf__free(btf);
}

export function btf__type_cnt(btf: Handle): number {
  return fn.btf__type_cnt(btf) as number;
}

/**
 * The raw bytes of type `id`: struct btf_type (12 bytes) followed by its kind-specific
 * data (members, enumerators, datasec entries), `trailing` bytes of it.
 */
export function btf__type_bytes(btf: Handle, id: number, trailing: number): Buffer {
  const p = checkPtr('btf__type_by_id', fn.btf__type_by_id(btf, id));
  return Buffer.from(new Uint8Array(koffi.view(p, 12 + trailing)));
}

export function btf__name_by_offset(btf: Handle, off: number): string {
  return (fn.btf__name_by_offset(btf, off) as string | null) ?? '';
}

export function btf__resolve_size(btf: Handle, id: number): number {
  const n = Number(fn.btf__resolve_size(btf, id));
  if (n < 0) throw new BpfError('btf__resolve_size', -n, []);
  return n;
}

// ---------------------------------------------------------------------------
// libc

// ---------------------------------------------------------------------------
// Ring buffer

/**
 * A libbpf ring_buffer reading map fd's records: consume() hands each record waiting, as
 * a copy, to onRecord, on the calling thread, and returns how many it read. Never blocks.
 */
export interface RingBufferHandle {
  consume(): number;
  free(): void;
}

export function ring_buffer__new(mapFd: number, onRecord: (data: Buffer) => void): RingBufferHandle {
  const cb = koffi.register((_ctx: unknown, data: unknown, size: number | bigint): number => {
    onRecord(Buffer.from(new Uint8Array(koffi.view(data, Number(size)))));
    return 0;
  }, koffi.pointer(ring_buffer_sample_fn));
  let rb: Handle;
  try {
    rb = checkPtr('ring_buffer__new', fn.ring_buffer__new(mapFd, cb, null, null));
  } catch (err) {
    koffi.unregister(cb);
    throw err;
  }
  let open = true;
  return {
    consume: () => (open ? check('ring_buffer__consume', fn.ring_buffer__consume(rb) as number) : 0),
    free: () => {
      if (!open) return;
      open = false;
      fn.ring_buffer__free(rb);
      koffi.unregister(cb);
    },
  };
}

export function closeFd(fd: number): void {
  fn.close(fd);
}

/** Interface index, or 0 when no interface has that name (in this network namespace). */
export function if_nametoindex(name: string): number {
  return fn.if_nametoindex(name) as number;
}
