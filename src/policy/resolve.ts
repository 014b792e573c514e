/**
 * The resolver: one endpoint's rules in one direction (rules.ts) → the policy entries
 * the datapath looks up, such that the first hit is the verdict of the first rule that
 * matches (past the pass rules that match, each skipping the rules below its passTo),
 * whatever wildcard entries could otherwise outrank it.
 *
 * The datapath (bpf/lib/policy.h) looks up the peer's own identity, then the "any peer"
 * identity, each as a longest-prefix match over protocol and port, then falls back to
 * the endpoint's default. So:
 *   - the "any peer" entries must give, everywhere, what the rules for every peer give
 *     (rules that list no identity), else the default;
 *   - an identity's entries must give, wherever they cover, what the rules give for that
 *     identity, and must cover everywhere the answer differs from the "any peer" entries
 *     (elsewhere the lookup falls through to them, and they are right);
 *   - within one identity, a protocol entry outranks the "all traffic" one and a port
 *     block outranks its protocol entry, so each level is written relative to the one
 *     below it.
 * Identities that the same rules list get the same entries (resolved once).
 */
import { portBlocks, type PolicyTraffic } from '../datapath/policy-keys.js';
import { precedes, type PolicyRule, type Verdict } from './rules.js';

export interface ResolvedEntry {
  /** 0: any peer (TP_IDENTITY_ANY). */
  identity: number;
  traffic: PolicyTraffic;
  verdict: Verdict;
}

const ANY_PEER = 0;
const LAST_PORT = 0xffff;

/** A verdict per port: sorted, adjacent, covering 0…65535, neighbours differ. */
type PortMap = { from: number; to: number; v: Verdict }[];

const same = (a: Verdict, b: Verdict) => a.action === b.action && a.ruleId === b.ruleId;

/**
 * The entries for rules of one endpoint and direction; `fallback` is what the endpoint
 * does when no entry matches (its default, rule id 0).
 */
export function resolve(rules: readonly PolicyRule[], fallback: Verdict): ResolvedEntry[] {
  const sorted = [...rules].sort((a, b) => (precedes(a, b) ? -1 : precedes(b, a) ? 1 : 0));
  const protocols = [...new Set(sorted.flatMap((r) => (r.traffic === 'any' ? [] : [r.traffic.protocol])))].sort((a, b) => a - b);

  const anyPeer = sorted.filter((r) => r.peers === 'any');
  const anyOthers = allTraffic(anyPeer) ?? fallback;
  const anyPorts = new Map(protocols.map((p) => [p, portMap(anyPeer, p, fallback)]));
  const out = entriesOf(ANY_PEER, anyPeer, protocols, fallback, fallback, () => constant(fallback));

  // Identities listed by the same rules resolve alike: group them by those rules.
  const listedBy = new Map<number, number[]>();
  sorted.forEach((r, i) => {
    if (r.peers !== 'any') for (const id of r.peers) (listedBy.get(id) ?? listedBy.set(id, []).get(id)!).push(i);
  });
  const groups = new Map<string, number[]>();
  for (const [id, idx] of listedBy) {
    const sig = idx.join(',');
    (groups.get(sig) ?? groups.set(sig, []).get(sig)!).push(id);
  }
  for (const ids of groups.values()) {
    const own = sorted.filter((r) => r.peers === 'any' || r.peers.has(ids[0]!));
    const entries = entriesOf(ids[0]!, own, protocols, fallback, anyOthers, (p) => anyPorts.get(p)!);
    for (const id of ids.sort((a, b) => a - b)) for (const e of entries) out.push({ ...e, identity: id });
  }
  return out;
}

/**
 * One class of peers' entries, given what a lookup falls through to where they do not
 * cover: `belowOthers` for protocols no rule names, `below(p)` per port of protocol p.
 */
function entriesOf(
  identity: number,
  rules: readonly PolicyRule[],
  protocols: readonly number[],
  fallback: Verdict,
  belowOthers: Verdict,
  below: (protocol: number) => PortMap,
): ResolvedEntry[] {
  const out: ResolvedEntry[] = [];
  const others = allTraffic(rules) ?? fallback;
  const ownAll = !same(others, belowOthers);
  if (ownAll) out.push({ identity, traffic: 'any', verdict: others });
  for (const protocol of protocols) {
    const want = portMap(rules, protocol, fallback);
    const under = ownAll ? constant(others) : below(protocol);
    // Either port blocks over what lies below, or one protocol entry (the verdict most
    // ports get) and port blocks over that: whichever needs fewer entries.
    const direct = differences(want, under);
    const common = dominant(want);
    const over = differences(want, constant(common));
    if (countBlocks(direct) <= 1 + countBlocks(over)) {
      out.push(...blocksOf(identity, protocol, direct));
    } else {
      out.push({ identity, traffic: { protocol, ports: 'any' }, verdict: common });
      out.push(...blocksOf(identity, protocol, over));
    }
  }
  return out;
}

/**
 * The verdict of the first rule that matches all traffic, if any, past pass rules that
 * match all traffic (each lifts the priority a deciding rule needs).
 */
function allTraffic(sorted: readonly PolicyRule[]): Verdict | undefined {
  let floor = -Infinity;
  for (const r of sorted) {
    if (r.traffic !== 'any' || r.priority < floor) continue;
    if (r.action === 'pass') floor = Math.max(floor, r.passTo ?? Infinity);
    else return { action: r.action, ruleId: r.ruleId };
  }
  return undefined;
}

/** Ports no rule has decided yet, and the lowest priority that may still decide them (pass rules lift it). */
type Gap = { from: number; to: number; floor: number };

/** Per port of `protocol`, the verdict of the first rule (of `sorted`, in order) that matches it and still applies there. */
function portMap(sorted: readonly PolicyRule[], protocol: number, fallback: Verdict): PortMap {
  let gaps: Gap[] = [{ from: 0, to: LAST_PORT, floor: -Infinity }];
  const painted: PortMap = [];
  for (const r of sorted) {
    if (gaps.length === 0) break;
    if (r.traffic !== 'any' && r.traffic.protocol !== protocol) continue;
    const range = r.traffic === 'any' || r.traffic.ports === 'any' ? { from: 0, to: LAST_PORT } : r.traffic.ports;
    // The undecided gaps are sorted: those that overlap the range and that r may still
    // decide are painted (a pass rule lifts their floor instead); the rest stay.
    const i = firstEndingAtOrAfter(gaps, range.from);
    const replaced: Gap[] = [];
    let j = i;
    for (; j < gaps.length && gaps[j]!.from <= range.to; j++) {
      const g = gaps[j]!;
      if (g.floor > r.priority) {
        replaced.push(g);
        continue;
      }
      const lo = Math.max(g.from, range.from);
      const hi = Math.min(g.to, range.to);
      if (g.from < lo) replaced.push({ from: g.from, to: lo - 1, floor: g.floor });
      if (r.action === 'pass') replaced.push({ from: lo, to: hi, floor: Math.max(g.floor, r.passTo ?? Infinity) });
      else painted.push({ from: lo, to: hi, v: { action: r.action, ruleId: r.ruleId } });
      if (hi < g.to) replaced.push({ from: hi + 1, to: g.to, floor: g.floor });
    }
    if (j > i) gaps = [...gaps.slice(0, i), ...replaced, ...gaps.slice(j)];
  }
  for (const g of gaps) painted.push({ from: g.from, to: g.to, v: fallback });
  painted.sort((a, b) => a.from - b.from);
  return merged(painted);
}

function firstEndingAtOrAfter(gaps: readonly { from: number; to: number }[], port: number): number {
  let lo = 0;
  let hi = gaps.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (gaps[mid]!.to < port) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function merged(m: PortMap): PortMap {
  const out: PortMap = [];
  for (const s of m) {
    const last = out[out.length - 1];
    if (last && last.to + 1 === s.from && same(last.v, s.v)) last.to = s.to;
    else out.push({ ...s });
  }
  return out;
}

const constant = (v: Verdict): PortMap => [{ from: 0, to: LAST_PORT, v }];

/** The verdict that covers the most ports (the lowest port's on a tie). */
function dominant(m: PortMap): Verdict {
  const size = new Map<string, { v: Verdict; n: number }>();
  for (const s of m) {
    const k = `${s.v.action}/${s.v.ruleId}`;
    const e = size.get(k) ?? size.set(k, { v: s.v, n: 0 }).get(k)!;
    e.n += s.to - s.from + 1;
  }
  let best: { v: Verdict; n: number } | undefined;
  for (const e of size.values()) if (!best || e.n > best.n) best = e;
  return best!.v;
}

/** The runs where `want` differs from `under`, each with want's verdict. */
function differences(want: PortMap, under: PortMap): PortMap {
  const out: PortMap = [];
  let j = 0;
  for (const w of want) {
    let from = w.from;
    while (from <= w.to) {
      while (under[j]!.to < from) j++;
      const u = under[j]!;
      const to = Math.min(w.to, u.to);
      if (!same(w.v, u.v)) out.push({ from, to, v: w.v });
      from = to + 1;
    }
  }
  return merged(out);
}

const countBlocks = (runs: PortMap) => runs.reduce((n, r) => n + portBlocks(r.from, r.to).length, 0);

function blocksOf(identity: number, protocol: number, runs: PortMap): ResolvedEntry[] {
  return runs.flatMap((r) => portBlocks(r.from, r.to).map((ports) => ({ identity, traffic: { protocol, ports }, verdict: r.v })));
}
