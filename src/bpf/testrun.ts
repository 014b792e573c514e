/**
 * BPF_PROG_TEST_RUN for tc programs: runs a loaded program on a synthesized frame in
 * the kernel, as the datapath tests and the per-packet benchmarks do.
 */
import * as ffi from './libbpf.js';
import type { BpfProgram } from './object.js';

/** tc verdicts a program returns (linux/pkt_cls.h). */
export const TC_ACT = { UNSPEC: -1, OK: 0, SHOT: 2, REDIRECT: 7 } as const;

export interface TestRunResult {
  /** The program's return value, signed (TC_ACT_UNSPEC is -1). */
  retval: number;
  /** The frame after the program ran (rewrites included). */
  data: Buffer;
  /** Mean run time per repetition, as the kernel measured it. */
  durationNs: number;
}

export interface TestRunOptions {
  /** Run this many times in the kernel (per-packet timing); the result is the last run's. */
  repeat?: number;
}

/**
 * Runs prog once (or `repeat` times) on `frame`, an Ethernet frame. The skb is
 * attributed to the loopback device (ifindex 1) of the calling network namespace.
 */
export function testRun(prog: BpfProgram, frame: Buffer, opts: TestRunOptions = {}): TestRunResult {
  const out = ffi.bpf_prog_test_run_opts(prog.fd, {
    data: frame,
    dataOutSize: frame.length + 256,
    repeat: opts.repeat ?? 1,
  });
  return { retval: out.retval, data: out.data, durationNs: out.durationNs };
}
