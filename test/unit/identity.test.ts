// Identity allocation against a real nats-server (JetStream), started by the test.
import { describe, expect, it } from 'vitest';
import { IdentityAllocator } from '../../src/identity/allocator.js';
import { canonicalLabels, type IdentityLabels } from '../../src/identity/labels.js';
import { identityEntry, identityRecord } from '../../src/store/schema.js';
import type { WatchHandle } from '../../src/store/store.js';
import { natsStores } from '../helpers/nats-stores.js';

const store = natsStores();

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

  it('identity - watching the bucket through a race never teaches a withdrawn number', async () => {
    // As in the agent: every allocator also sees the bucket's records through a watch,
    // including the id/<n> a loser publishes and then withdraws.
    const nodes = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const s = await store();
        const a = new IdentityAllocator(s);
        const node = { a, seen: 0, w: undefined as unknown as WatchHandle };
        node.w = s.watch('identities', identityEntry, (c) => {
          a.observe({ key: c.key, value: c.type === 'put' ? c.value : undefined });
          node.seen = c.revision;
        });
        await node.w.synced;
        return node;
      }),
    );
    const sets = Array.from({ length: 8 }, (_, i) => labels('watched', { app: `w${i}` }));
    await Promise.all(nodes.map((n) => Promise.all(sets.map((l) => n.a.resolve(l)))));
    // Let every watch catch up with the withdrawals, then ask again.
    const s = await store();
    const last = await s.lastRevision('identities');
    for (let i = 0; i < 250 && nodes.some((n) => n.seen < last); i++) await new Promise((r) => setTimeout(r, 20));
    expect(nodes.map((n) => n.seen >= last)).toEqual(nodes.map(() => true));
    const again = await Promise.all(nodes.map((n) => Promise.all(sets.map((l) => n.a.resolve(l)))));
    for (const r of again) expect(r).toEqual(again[0]);
    // Every number in use is live and means the labels it is used for.
    for (const [i, id] of again[0]!.entries()) {
      const rec = await s.get('identities', `id/${id}`, identityRecord);
      expect(rec, `id/${id}`).toBeDefined();
      expect(canonicalLabels(rec!.value.labels)).toBe(canonicalLabels(sets[i]!));
    }
    // A label set allocated afterwards gets a number none of those sets resolves to.
    const fresh = await new IdentityAllocator(await store()).resolve(labels('watched', { app: 'later' }));
    expect(again[0]).not.toContain(fresh);
    for (const n of nodes) expect(await Promise.all(sets.map((l) => n.a.resolve(l)))).toEqual(again[0]);
    for (const n of nodes) n.w.stop();
  });
});
