// Identity allocation against a real nats-server (JetStream), started by the test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityAllocator } from '../../src/identity/allocator.js';
import { canonicalLabels, type IdentityLabels } from '../../src/identity/labels.js';
import { identityRecord } from '../../src/store/schema.js';
import { Store } from '../../src/store/store.js';
import { startNats, type TestNats } from '../helpers/nats.js';

let nats: TestNats;
const stores: Store[] = [];
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await nats.stop();
});

async function store(): Promise<Store> {
  const s = await Store.connect(nats.url);
  stores.push(s);
  return s;
}

const labels = (ns: string, pod: Record<string, string>, nsl: Record<string, string> = {}): IdentityLabels => ({
  namespace: ns,
  pod,
  namespaceLabels: nsl,
});

describe('identity', () => {
  it('identity - label order does not change the canonical form', () => {
    expect(canonicalLabels(labels('x', { a: '1', b: '2' }))).toBe(canonicalLabels(labels('x', { b: '2', a: '1' })));
    expect(canonicalLabels(labels('x', { a: '1' }))).not.toBe(canonicalLabels(labels('y', { a: '1' })));
  });

  it('identity - equal labels get one number, different labels different numbers, from 256 up', async () => {
    const a = new IdentityAllocator(await store());
    const id1 = await a.resolve(labels('x', { app: 'web' }));
    const id2 = await a.resolve(labels('x', { app: 'web' }));
    const id3 = await a.resolve(labels('x', { app: 'db' }));
    expect(id1).toBeGreaterThanOrEqual(256);
    expect(id2).toBe(id1);
    expect(id3).not.toBe(id1);
  });

  it('identity - two nodes allocating at once never disagree', async () => {
    const nodes = await Promise.all([0, 1, 2, 3].map(async () => new IdentityAllocator(await store())));
    const sets = Array.from({ length: 12 }, (_, i) => labels('race', { app: `a${i % 6}` }));
    // Every node resolves every label set concurrently.
    const results = await Promise.all(nodes.map((n) => Promise.all(sets.map((s) => n.resolve(s)))));
    for (const r of results) expect(r).toEqual(results[0]);
    const byLabels = new Map<string, number>();
    sets.forEach((s, i) => byLabels.set(canonicalLabels(s), results[0]![i]!));
    expect(new Set(byLabels.values()).size).toBe(6);
    // Each number the nodes use means exactly the labels they used it for.
    const s = await store();
    for (const [canon, id] of byLabels) {
      const rec = await s.get('identities', `id/${id}`, identityRecord);
      expect(canonicalLabels(rec!.value.labels)).toBe(canon);
    }
  });
});
