/**
 * A reader of a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF). poll() reads every record
 * waiting, on the caller's thread, without blocking: callers poll on a timer, so the
 * event loop never waits on the kernel. Records are copies, safe to keep.
 */
import { BpfError } from './errors.js';
import * as ffi from './libbpf.js';
import { MAP_TYPE, type BpfMap } from './map.js';

export class RingBuffer {
  private readonly rb: ffi.RingBufferHandle;
  private pending: Buffer[] = [];

  constructor(map: BpfMap) {
    if (map.info.type !== MAP_TYPE.RINGBUF) throw new BpfError('ring buffer', 22, [], `${map.name}: not a ring buffer (type ${map.info.type})`);
    this.rb = ffi.ring_buffer__new(map.fd, (data) => this.pending.push(data));
  }

  /** Every record the buffer holds now, oldest first. */
  poll(): Buffer[] {
    this.rb.consume();
    const out = this.pending;
    this.pending = [];
    return out;
  }

  close(): void {
    this.rb.free();
  }
}
