/**
 * Typed errors of the BPF layer. Messages read `op: detail`.
 *   BpfError           a libbpf or bpf(2) call failed: the call and errno
 *   VerifierError      the kernel rejected a program: keeps the verifier log
 *   NotSupportedError  the running kernel lacks a feature: names it and the minimum kernel
 */
import { constants } from 'node:os';

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(constants.errno).map(([name, n]) => [n as number, name]),
);

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

export class BpfError extends Error {
  override name = 'BpfError';
  constructor(
    readonly call: string,
    readonly errno: number,
    /** libbpf's own warnings printed during the call, oldest first. */
    readonly libbpfLog: readonly string[] = [],
    detail?: string,
  ) {
    const last = libbpfLog.length ? ` (libbpf: ${libbpfLog[libbpfLog.length - 1]!.replace(/^libbpf: /, '')})` : '';
    super(`${call}: ${detail ?? errnoName(errno)}${last}`);
  }
}

export class VerifierError extends Error {
  override name = 'VerifierError';
  constructor(
    readonly program: string,
    readonly log: string,
    options?: { cause?: unknown },
  ) {
    const tail = log.trimEnd().split('\n').slice(-3).join(' | ');
    super(`load ${program}: rejected by the verifier: ${tail}`, options);
  }
}

export class NotSupportedError extends Error {
  override name = 'NotSupportedError';
  constructor(
    readonly feature: string,
    readonly minimumKernel: string,
    options?: { cause?: unknown },
  ) {
    super(`${feature}: not supported by this kernel (needs Linux ${minimumKernel} or later)`, options);
  }
}
