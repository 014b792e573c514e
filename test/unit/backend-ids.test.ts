import { describe, expect, it } from 'vitest';
import { BackendIds, BackendIdsExhausted } from '../../src/services/backend-ids.js';

describe('backend ids', () => {
  it('backend ids - new backends take the lowest free id, kept ones keep theirs, freed ones are reused', () => {
    const ids = new BackendIds([['a', 1], ['c', 3]], 8);
    expect([ids.claim('a'), ids.claim('b'), ids.claim('c'), ids.claim('d')]).toEqual([1, 2, 3, 4]);
    ids.release('b');
    ids.release('c');
    ids.release('nobody'); // no id: nothing to do
    expect([ids.claim('a'), ids.claim('d'), ids.claim('e'), ids.claim('f'), ids.claim('g')]).toEqual([1, 4, 2, 3, 5]);
    expect(ids.size).toBe(5);
    expect([...ids.keys()].sort()).toEqual(['a', 'd', 'e', 'f', 'g']);
  });

  it('backend ids - claiming past the map size is refused', () => {
    const ids = new BackendIds([], 3);
    ids.claim('a');
    ids.claim('b');
    expect(() => ids.claim('c')).toThrow(BackendIdsExhausted);
  });

  it('backend ids - 100,000 new backends get ids 1 to 100,000 (the free id is found without scanning every id)', () => {
    const ids = new BackendIds([], 200_000);
    for (let i = 0; i < 100_000; i++) ids.claim(`b${i}`);
    expect(ids.size).toBe(100_000);
    expect(ids.claim('b99999')).toBe(100_000);
  });
});
