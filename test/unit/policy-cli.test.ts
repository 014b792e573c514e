// The CLI's store writes: all sent together, failures named with what did get written.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sendAll } from '../../src/cli/apply.js';

afterEach(() => vi.restoreAllMocks());

describe('policy cli', () => {
  it('policy cli - every write is sent before any answer is awaited, and each success is printed', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const started: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const write = (name: string) => ({ name, outcome: 'created', send: async () => (started.push(name), gate) });
    const done = sendAll('apply', [write('a'), write('b'), write('c')]);
    await Promise.resolve();
    expect(started).toEqual(['a', 'b', 'c']);
    release();
    await done;
    expect(log.mock.calls.map((c) => c[0])).toEqual(['a created', 'b created', 'c created']);
  });

  it('policy cli - a failed write is named with its cause, and the ones written are still reported', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const ok = (name: string) => ({ name, outcome: 'deleted', send: async () => 1 });
    const bad = { name: 'networkpolicy/x/b', outcome: 'deleted', send: async () => Promise.reject(new Error('timeout')) };
    await expect(sendAll('delete', [ok('networkpolicy/x/a'), bad, ok('networkpolicy/x/c')])).rejects.toThrow(
      'delete: 1 of 3 not written: networkpolicy/x/b (timeout); 2 written (listed above)',
    );
    expect(log.mock.calls.map((c) => c[0])).toEqual(['networkpolicy/x/a deleted', 'networkpolicy/x/c deleted']);
  });
});
