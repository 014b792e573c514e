// Typed errors from the BPF layer. Needs root (program loads) and `make` first.
import { describe, expect, it } from 'vitest';
import { BpfError, VerifierError } from '../../src/bpf/errors.js';
import { BpfMap } from '../../src/bpf/map.js';
import { BpfObject } from '../../src/bpf/object.js';
import { ROOT } from '../helpers/paths.js';

describe('bpf errors', () => {
  it('bpf errors - a verifier rejection names the program and keeps the log', () => {
    let err: unknown;
    try {
      BpfObject.load(`${ROOT}build/test/reject.bpf.o`).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerifierError);
    const v = err as VerifierError;
    expect(v.program).toBe('tp_test_reject');
    expect(v.log).toMatch(/invalid access to packet|R\d.*invalid/);
    expect(v.message).toMatch(/^load tp_test_reject: rejected by the verifier/);
  });

  it('bpf errors - a failed call carries the libbpf call and errno', () => {
    let err: unknown;
    try {
      BpfObject.load(`${ROOT}build/does-not-exist.bpf.o`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BpfError);
    expect((err as BpfError).call).toBe('bpf_object__open_file');
    expect((err as BpfError).errno).toBe(2);
    expect((err as BpfError).message).toMatch(/^bpf_object__open_file: ENOENT/);
  });

  it('bpf errors - opening a missing pin is ENOENT from bpf_obj_get', () => {
    expect(() => BpfMap.fromPin('/sys/fs/bpf/tp-no-such-pin')).toThrowError(/^bpf_obj_get: ENOENT/);
  });
});
