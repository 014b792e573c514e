/**
 * The resolver (src/policy/resolve.ts) against a direct reading of precedence: for any
 * rules, any peer, protocol and port, what the datapath's lookups find among the
 * resolved entries (modelled here: the peer's identity, then any peer, each by longest
 * prefix, then the default) is the verdict of the first rule that matches.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { policyKey, portBlocks, type PolicyTraffic } from '../../src/datapath/policy-keys.js';
import { resolve, resolveAudited, type ResolvedEntry } from '../../src/policy/resolve.js';
import type { PolicyRule, RuleTraffic, Verdict } from '../../src/policy/rules.js';

const DENY_ALL: Verdict = { action: 'deny', ruleId: 0 };

/** The prefix length a matching entry has (tp_policy.h), or -1 when it does not match. */
function matchLength(t: PolicyTraffic, protocol: number, port: number): number {
  if (t === 'any') return 72;
  if (t.protocol !== protocol) return -1;
  if (t.ports === 'any') return 80;
  const shift = 16 - t.ports.bits;
  return port >> shift === t.ports.port >> shift ? 80 + t.ports.bits : -1;
}

/** The datapath's two lookups over `entries`, then the default. */
function lookup(entries: readonly ResolvedEntry[], fallback: Verdict, identity: number, protocol: number, port: number): Verdict {
  for (const id of [identity, 0]) {
    let best: ResolvedEntry | undefined;
    let bestLen = -1;
    for (const e of entries) {
      if (e.identity !== id) continue;
      const len = matchLength(e.traffic, protocol, port);
      if (len > bestLen) [best, bestLen] = [e, len];
    }
    if (best) return best.verdict;
  }
  return fallback;
}

/**
 * What the rules say, read directly: the first rule (priority, then id) that matches
 * decides; a pass rule that matches skips every later rule of priority below its passTo.
 */
function firstMatch(rules: readonly PolicyRule[], fallback: Verdict, identity: number, protocol: number, port: number): Verdict {
  const matching = rules.filter((r) => {
    if (r.peers !== 'any' && !r.peers.has(identity)) return false;
    if (r.traffic === 'any') return true;
    if (r.traffic.protocol !== protocol) return false;
    return r.traffic.ports === 'any' || (port >= r.traffic.ports.from && port <= r.traffic.ports.to);
  });
  matching.sort((a, b) => a.priority - b.priority || a.ruleId - b.ruleId);
  let skipBelow = -1;
  for (const r of matching) {
    if (r.priority < skipBelow) continue;
    if (r.action === 'pass') skipBelow = Math.max(skipBelow, r.passTo!);
    else return { action: r.action, ruleId: r.ruleId };
  }
  return fallback;
}

const IDENTITIES = [256, 257, 258, 300];
const PROTOCOLS = [6, 17, 132];
/** Ports near a few boundaries, so ranges overlap often. */
const port = fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constantFrom(0, 1, 79, 80, 81, 443, 1023, 1024, 8080, 65535), fc.integer({ min: 75, max: 90 }));
const traffic: fc.Arbitrary<RuleTraffic> = fc.oneof(
  { weight: 1, arbitrary: fc.constant('any' as const) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTOCOLS).map((protocol) => ({ protocol, ports: 'any' as const })) },
  {
    weight: 4,
    arbitrary: fc.tuple(fc.constantFrom(...PROTOCOLS), port, port).map(([protocol, a, b]) => ({ protocol, ports: { from: Math.min(a, b), to: Math.max(a, b) } })),
  },
);
const rule = (ruleId: number): fc.Arbitrary<PolicyRule> =>
  fc.record({
    peers: fc.oneof(fc.constant('any' as const), fc.subarray(IDENTITIES, { minLength: 1 }).map((ids) => new Set(ids))),
    traffic,
    action: fc.constantFrom('allow' as const, 'deny' as const, 'deny' as const, 'pass' as const),
    priority: fc.integer({ min: 0, max: 5 }),
    ruleId: fc.constant(ruleId),
    skip: fc.integer({ min: 1, max: 3 }),
  }).map(({ skip, ...r }): PolicyRule => (r.action === 'pass' ? { ...r, passTo: r.priority + skip } : r));
// Ids repeat now and then: the compiler gives every port of one rule its rule's id.
const rules = fc.integer({ min: 0, max: 12 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => rule(1000 + (i % 9)))));
const fallback = fc.constantFrom(DENY_ALL, { action: 'allow' as const, ruleId: 0 });
const probe = fc.record({ identity: fc.constantFrom(...IDENTITIES, 999), protocol: fc.constantFrom(...PROTOCOLS, 1), port });

describe('policy resolver', () => {
  it('policy resolver - the first hit of the lookups is the first matching rule, for any rules and packets', () => {
    fc.assert(
      fc.property(rules, fallback, fc.array(probe, { minLength: 20, maxLength: 20 }), (rs, fb, probes) => {
        const entries = resolve(rs, fb);
        // The trie holds one value per key: no two entries may share one.
        const keys = entries.map((e) => JSON.stringify(policyKey(1, e.identity, 0, e.traffic)));
        expect(new Set(keys).size).toBe(keys.length);
        // Random packets, then every port a rule starts or ends at and the ones beside.
        for (const p of probes) {
          expect(lookup(entries, fb, p.identity, p.protocol, p.port)).toEqual(firstMatch(rs, fb, p.identity, p.protocol, p.port));
        }
        for (const r of rs) {
          if (r.traffic === 'any' || r.traffic.ports === 'any') continue;
          for (const edge of [r.traffic.ports.from - 1, r.traffic.ports.from, r.traffic.ports.to, r.traffic.ports.to + 1]) {
            if (edge < 0 || edge > 65535) continue;
            for (const id of [...IDENTITIES, 999]) {
              expect(lookup(entries, fb, id, r.traffic.protocol, edge)).toEqual(firstMatch(rs, fb, id, r.traffic.protocol, edge));
            }
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('policy resolver - audit mode: what the enforced rules give, but audit (with the rule) where only the audited ones deny', () => {
    // Read directly: each reading's first match, then audit wherever enforced lets it through and all would not.
    const expected = (enforced: Verdict, all: Verdict): Verdict => (enforced.action !== 'deny' && all.action === 'deny' ? { action: 'audit', ruleId: all.ruleId } : enforced);
    fc.assert(
      fc.property(rules, rules, fallback, fallback, fc.array(probe, { minLength: 30, maxLength: 30 }), (enforced, audited, efb, afb, probes) => {
        // The full reading holds the enforced rules and the audited ones (their ids apart).
        const extra = audited.map((r) => ({ ...r, ruleId: r.ruleId + 1000 }));
        const all = [...enforced, ...extra];
        const entries = resolveAudited({ rules: enforced, fallback: efb }, { rules: all, fallback: afb });
        const keys = entries.map((e) => JSON.stringify(policyKey(1, e.identity, 0, e.traffic)));
        expect(new Set(keys).size).toBe(keys.length);
        const fb = expected(efb, afb);
        const edges = all.flatMap((r) => (r.traffic === 'any' || r.traffic.ports === 'any' ? [] : [r.traffic.ports.from - 1, r.traffic.ports.from, r.traffic.ports.to, r.traffic.ports.to + 1].filter((e) => e >= 0 && e <= 65535).map((e) => ({ protocol: (r.traffic as { protocol: number }).protocol, port: e }))));
        for (const p of [...probes, ...edges.flatMap((e) => [...IDENTITIES, 999].map((identity) => ({ identity, ...e })))]) {
          expect(lookup(entries, fb, p.identity, p.protocol, p.port)).toEqual(expected(firstMatch(enforced, efb, p.identity, p.protocol, p.port), firstMatch(all, afb, p.identity, p.protocol, p.port)));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('policy resolver - a higher-priority deny for one peer outranks an allow for every peer on a wider range', () => {
    const rs: PolicyRule[] = [
      { peers: 'any', traffic: { protocol: 6, ports: { from: 1, to: 65535 } }, action: 'allow', priority: 1, ruleId: 10 },
      { peers: new Set([256]), traffic: { protocol: 6, ports: { from: 80, to: 80 } }, action: 'deny', priority: 0, ruleId: 11 },
    ];
    const entries = resolve(rs, DENY_ALL);
    expect(lookup(entries, DENY_ALL, 256, 6, 80)).toEqual({ action: 'deny', ruleId: 11 });
    expect(lookup(entries, DENY_ALL, 256, 6, 81)).toEqual({ action: 'allow', ruleId: 10 });
    expect(lookup(entries, DENY_ALL, 257, 6, 80)).toEqual({ action: 'allow', ruleId: 10 });
    expect(lookup(entries, DENY_ALL, 256, 17, 80)).toEqual(DENY_ALL);
  });

  it('policy resolver - identities listed by the same rules share entries, and redundant ones are not written', () => {
    const rs: PolicyRule[] = [
      { peers: new Set([256, 257]), traffic: { protocol: 6, ports: { from: 80, to: 80 } }, action: 'allow', priority: 0, ruleId: 5 },
      { peers: 'any', traffic: { protocol: 6, ports: { from: 80, to: 80 } }, action: 'allow', priority: 0, ruleId: 9 },
    ];
    const entries = resolve(rs, DENY_ALL);
    // The "any peer" entry, and one per listed identity (their rule 5 comes first).
    expect(entries.map((e) => [e.identity, e.verdict.ruleId])).toEqual([
      [0, 9],
      [256, 5],
      [257, 5],
    ]);
    // The same rule for every peer alone needs one entry.
    expect(resolve([{ ...rs[1]!, ruleId: 4 }, { ...rs[0]!, ruleId: 5 }], DENY_ALL)).toHaveLength(1);
  });

  it('policy resolver - a port range is the fewest aligned blocks; most of a protocol is one protocol entry', () => {
    const range = (from: number, to: number): PolicyRule[] => [{ peers: 'any', traffic: { protocol: 6, ports: { from, to } }, action: 'allow', priority: 0, ruleId: 7 }];
    expect(resolve(range(8000, 8000), DENY_ALL)).toHaveLength(1);
    expect(resolve(range(8000, 8191), DENY_ALL)).toHaveLength(portBlocks(8000, 8191).length);
    // 1-65535: all but port 0, written as "all of TCP" with a block for port 0 over it.
    expect(resolve(range(1, 65535), DENY_ALL).map((e) => [e.traffic, e.verdict.action])).toEqual([
      [{ protocol: 6, ports: 'any' }, 'allow'],
      [{ protocol: 6, ports: { port: 0, bits: 16 } }, 'deny'],
    ]);
  });
});

describe('port blocks', () => {
  it('port blocks - cover the range exactly, each aligned, at most 30 for any range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (a, b) => {
        const [from, to] = [Math.min(a, b), Math.max(a, b)];
        const blocks = portBlocks(from, to);
        let next = from;
        for (const { port, bits } of blocks) {
          const size = 2 ** (16 - bits);
          expect(port).toBe(next);
          expect(port % size).toBe(0);
          next = port + size;
        }
        expect(next).toBe(to + 1);
        expect(blocks.length).toBeLessThanOrEqual(30);
      }),
    );
    expect(portBlocks(0, 65535)).toEqual([{ port: 0, bits: 0 }]);
    expect(portBlocks(80, 80)).toEqual([{ port: 80, bits: 16 }]);
    expect(portBlocks(8000, 8080)).toEqual([
      { port: 8000, bits: 10 }, // 8000–8063
      { port: 8064, bits: 12 }, // 8064–8079
      { port: 8080, bits: 16 },
    ]);
  });
});
