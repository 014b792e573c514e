import { describe, expect, it } from 'vitest';
import { BackendIds, BackendIdsExhausted } from '../../src/services/backend-ids.js';

describe('backend ids', () => {
  it('backend ids - new backends take the lowest free id, kept ones keep theirs, freed ones are reused', () => {
    const ids = new BackendIds([['a', 1], ['c', 3]], 8);
    ids.begin();
    expect([ids.claim('a'), ids.claim('b'), ids.claim('c'), ids.claim('d')]).toEqual([1, 2, 3, 4]);
    ids.end();
    ids.begin();
    expect([ids.claim('a'), ids.claim('d')]).toEqual([1, 4]);
    ids.end(); // b (2) and c (3) are freed
    ids.begin();
    expect([ids.claim('a'), ids.claim('d'), ids.claim('e'), ids.claim('f'), ids.claim('g')]).toEqual([1, 4, 2, 3, 5]);
    ids.end();
    expect(ids.size).toBe(5);
  });

  it('backend ids - claiming past the map size is refused', () => {
    const ids = new BackendIds([], 3);
    ids.begin();
    ids.claim('a');
    ids.claim('b');
    expect(() => ids.claim('c')).toThrow(BackendIdsExhausted);
  });

  it('backend ids - 100,000 new backends get ids 1 to 100,000 (the free id is found without scanning every id)', () => {
    const ids = new BackendIds([], 200_000);
    ids.begin();
    for (let i = 0; i < 100_000; i++) ids.claim(`b${i}`);
    ids.end();
    expect(ids.size).toBe(100_000);
  });
});
