/**
 * Attaching tc programs: one small type per mechanism, each removing only what it made.
 *
 *   TcxLink        a tcx bpf_link (Linux 6.6+). Appended after existing tcx programs,
 *                  so other tc users keep running; pinned, it outlives the agent, and
 *                  a new agent swaps the program in place with bpf_link_update (no
 *                  moment without a program).
 *   ClsactFilter   a cls_bpf filter (direct-action) on the clsact qdisc, for older
 *                  kernels: a fixed handle and priority let a new agent replace it
 *                  atomically (BPF_TC_F_REPLACE). Detach removes the filter only; the
 *                  qdisc stays, since other tc users may hang filters off it too.
 */
import { unlinkSync } from 'node:fs';
import { BpfError, NotSupportedError } from './errors.js';
import * as ffi from './libbpf.js';
import type { BpfProgram } from './object.js';

export type TcDirection = 'ingress' | 'egress';

export interface TcAttachment {
  readonly kind: 'tcx' | 'clsact';
  readonly ifindex: number;
  readonly direction: TcDirection;
  /** Points the hook at another program without a gap. */
  replace(prog: BpfProgram): void;
  /** Removes the attachment (and its pin, if any). */
  detach(): void;
  /** Releases this process's handle; the attachment stays if pinned (tcx) or always (clsact). */
  close(): void;
}

const EINVAL = 22;
const ENOLINK = 67;

export function ifindexOf(ifname: string): number {
  const idx = ffi.if_nametoindex(ifname);
  if (idx === 0) throw new BpfError('if_nametoindex', 19 /* ENODEV */, [], `no interface named ${ifname}`);
  return idx;
}

export class TcxLink implements TcAttachment {
  readonly kind = 'tcx';
  private fd: number;

  private constructor(
    fd: number,
    readonly ifindex: number,
    readonly direction: TcDirection,
    private pinPath: string | undefined,
  ) {
    this.fd = fd;
  }

  static attach(prog: BpfProgram, ifindex: number, direction: TcDirection): TcxLink {
    const type = direction === 'ingress' ? ffi.BPF_TCX_INGRESS : ffi.BPF_TCX_EGRESS;
    try {
      return new TcxLink(ffi.bpf_link_create(prog.fd, ifindex, type), ifindex, direction, undefined);
    } catch (err) {
      if (err instanceof BpfError && err.errno === EINVAL) {
        throw new NotSupportedError('tcx links', '6.6', { cause: err });
      }
      throw err;
    }
  }

  /**
   * Opens a pinned link. Returns null when the pin is missing or the link no longer
   * hangs on an interface (the interface went away); a dead pin is removed.
   */
  static adopt(pinPath: string): TcxLink | null {
    let fd: number;
    try {
      fd = ffi.bpf_obj_get(pinPath);
    } catch {
      return null;
    }
    // struct bpf_link_info: type, id, prog_id, then a union aligned to 8 (offset 16);
    // for tcx the union starts with ifindex, attach_type.
    const info = ffi.bpf_obj_get_info_by_fd(fd, 64);
    const ifindex = info.readUInt32LE(16);
    const attachType = info.readUInt32LE(20);
    if (ifindex === 0 || (attachType !== ffi.BPF_TCX_INGRESS && attachType !== ffi.BPF_TCX_EGRESS)) {
      ffi.closeFd(fd);
      unlinkQuiet(pinPath);
      return null;
    }
    return new TcxLink(fd, ifindex, attachType === ffi.BPF_TCX_INGRESS ? 'ingress' : 'egress', pinPath);
  }

  pin(path: string): void {
    ffi.bpf_obj_pin(this.fd, path);
    this.pinPath = path;
  }

  /** Kernel id of the program the link runs now (struct bpf_link_info.prog_id). */
  programId(): number {
    return ffi.bpf_obj_get_info_by_fd(this.fd, 64).readUInt32LE(8);
  }

  replace(prog: BpfProgram): void {
    try {
      ffi.bpf_link_update(this.fd, prog.fd);
    } catch (err) {
      if (err instanceof BpfError && err.errno === ENOLINK) {
        throw new BpfError('bpf_link_update', ENOLINK, [], `tcx link on ifindex ${this.ifindex} is no longer attached`);
      }
      throw err;
    }
  }

  detach(): void {
    try {
      ffi.bpf_link_detach(this.fd);
    } catch (err) {
      if (!(err instanceof BpfError && err.errno === ENOLINK)) throw err;
    }
    if (this.pinPath) unlinkQuiet(this.pinPath);
    this.pinPath = undefined;
    this.close();
  }

  close(): void {
    if (this.fd >= 0) ffi.closeFd(this.fd);
    this.fd = -1;
  }
}

/** Handle and priority tcplane's cls_bpf filters use: 'tp' and first in line. */
export const CLSACT_FILTER = { handle: 0x7470, priority: 1 } as const;

export class ClsactFilter implements TcAttachment {
  readonly kind = 'clsact';

  private constructor(
    readonly ifindex: number,
    readonly direction: TcDirection,
  ) {}

  private get point(): number {
    return this.direction === 'ingress' ? ffi.BPF_TC_INGRESS : ffi.BPF_TC_EGRESS;
  }

  /** Attaches, replacing tcplane's earlier filter on the same hook if there is one. */
  static attach(prog: BpfProgram, ifindex: number, direction: TcDirection): ClsactFilter {
    const f = new ClsactFilter(ifindex, direction);
    ffi.bpf_tc_hook_create(ifindex, f.point);
    const existing = ffi.bpf_tc_query(ifindex, f.point, CLSACT_FILTER);
    ffi.bpf_tc_attach(ifindex, f.point, prog.fd, CLSACT_FILTER, existing !== null);
    return f;
  }

  /** The filter tcplane left on this hook, if any. */
  static find(ifindex: number, direction: TcDirection): ClsactFilter | null {
    const f = new ClsactFilter(ifindex, direction);
    return ffi.bpf_tc_query(ifindex, f.point, CLSACT_FILTER) === null ? null : f;
  }

  replace(prog: BpfProgram): void {
    ffi.bpf_tc_attach(this.ifindex, this.point, prog.fd, CLSACT_FILTER, true);
  }

  detach(): void {
    if (ffi.bpf_tc_query(this.ifindex, this.point, CLSACT_FILTER) !== null) {
      ffi.bpf_tc_detach(this.ifindex, this.point, CLSACT_FILTER);
    }
  }

  close(): void {
    // Nothing held: cls_bpf filters live in the kernel on their own.
  }
}

export type AttachMode = 'auto' | 'tcx' | 'clsact';

let tcxKnownMissing = false;

/**
 * Attaches with tcx where the kernel has it, clsact otherwise ('auto'), or with the
 * mechanism asked for.
 */
export function attachTc(prog: BpfProgram, ifindex: number, direction: TcDirection, mode: AttachMode = 'auto'): TcAttachment {
  if (mode === 'clsact' || (mode === 'auto' && tcxKnownMissing)) return ClsactFilter.attach(prog, ifindex, direction);
  try {
    return TcxLink.attach(prog, ifindex, direction);
  } catch (err) {
    if (mode === 'auto' && err instanceof NotSupportedError) {
      tcxKnownMissing = true;
      return ClsactFilter.attach(prog, ifindex, direction);
    }
    throw err;
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}
