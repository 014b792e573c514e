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
  return resolveViews([{ rules, fallback }], ([v]) => v!);
}

/** One reading of an endpoint's rules in one direction: its rules and what no rule decides. */
export interface RuleView {
  rules: readonly PolicyRule[];
  fallback: Verdict;
}

/**
 * Audit mode: the entries for two readings of the same endpoint and direction —
 * `enforced` (without the audited policies) and `all` (with them) — such that each
 * packet gets what `enforced` gives, except where that allows and `all` denies: there it
 * gets `audit` with the rule of `all` that would have denied it (0: the default). An
 * audited policy can so never drop, nor allow what the enforced ones deny.
 */
export function resolveAudited(enforced: RuleView, all: RuleView): ResolvedEntry[] {
  return resolveViews([enforced, all], ([e, a]) => (e!.action !== 'deny' && a!.action === 'deny' ? { action: 'audit', ruleId: a!.ruleId } : e!));
}

/**
 * The entries for several readings at once: at every point (peer, protocol, port) the
 * verdict is `combine` of each reading's own verdict there.
 */
function resolveViews(views: readonly RuleView[], combine: (each: Verdict[]) => Verdict): ResolvedEntry[] {
  const sorted = views.map((v) => ({ rules: [...v.rules].sort((a, b) => (precedes(a, b) ? -1 : precedes(b, a) ? 1 : 0)), fallback: v.fallback }));
  const protocols = [...new Set(sorted.flatMap((v) => v.rules.flatMap((r) => (r.traffic === 'any' ? [] : [r.traffic.protocol]))))].sort((a, b) => a - b);
  const fallback = combine(sorted.map((v) => v.fallback));
  /** The readings restricted to the rules that apply to one class of peers. */
  const classOf = (applies: (r: PolicyRule) => boolean): PeerClass => {
    const own = sorted.map((v) => ({ rules: v.rules.filter(applies), fallback: v.fallback }));
    return {
      others: () => combine(own.map((v) => allTraffic(v.rules) ?? v.fallback)),
      ports: (protocol) => zipped(own.map((v) => portMap(v.rules, protocol, v.fallback)), combine),
    };
  };

  const anyPeer = classOf((r) => r.peers === 'any');
  const anyOthers = anyPeer.others();
  const anyPorts = new Map(protocols.map((p) => [p, anyPeer.ports(p)]));
  const out = entriesOf(ANY_PEER, anyPeer, protocols, fallback, () => constant(fallback));

  // Identities listed by the same rules (of every reading) resolve alike: group them by those rules.
  const listedBy = new Map<number, string[]>();
  sorted.forEach((v, k) =>
    v.rules.forEach((r, i) => {
      if (r.peers !== 'any') for (const id of r.peers) (listedBy.get(id) ?? listedBy.set(id, []).get(id)!).push(`${k}.${i}`);
    }),
  );
  const groups = new Map<string, number[]>();
  for (const [id, idx] of listedBy) {
    const sig = idx.join(',');
    (groups.get(sig) ?? groups.set(sig, []).get(sig)!).push(id);
  }
  for (const ids of groups.values()) {
    const first = ids[0]!;
    const entries = entriesOf(first, classOf((r) => r.peers === 'any' || r.peers.has(first)), protocols, anyOthers, (p) => anyPorts.get(p)!);
    for (const id of ids.sort((a, b) => a - b)) for (const e of entries) out.push({ ...e, identity: id });
  }
  return out;
}

/** What one class of peers gets: for protocols no rule names, and per port of a protocol. */
interface PeerClass {
  others(): Verdict;
  ports(protocol: number): PortMap;
}

/**
 * One class of peers' entries, given what a lookup falls through to where they do not
 * cover: `belowOthers` for protocols no rule names, `below(p)` per port of protocol p.
 */
function entriesOf(identity: number, cls: PeerClass, protocols: readonly number[], belowOthers: Verdict, below: (protocol: number) => PortMap): ResolvedEntry[] {
  const out: ResolvedEntry[] = [];
  const others = cls.others();
  const ownAll = !same(others, belowOthers);
  if (ownAll) out.push({ identity, traffic: 'any', verdict: others });
  for (const protocol of protocols) {
    const want = cls.ports(protocol);
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

/** Port maps of several readings as one: at each port, `combine` of theirs. */
function zipped(maps: readonly PortMap[], combine: (each: Verdict[]) => Verdict): PortMap {
  if (maps.length === 1) return maps[0]!;
  const cuts = [...new Set(maps.flatMap((m) => m.map((s) => s.from)))].sort((a, b) => a - b);
  const at = maps.map(() => 0);
  const out: PortMap = [];
  cuts.forEach((from, c) => {
    const to = c + 1 < cuts.length ? cuts[c + 1]! - 1 : LAST_PORT;
    const each = maps.map((m, k) => {
      while (m[at[k]!]!.to < from) at[k]!++;
      return m[at[k]!]!.v;
    });
    out.push({ from, to, v: combine(each) });
  });
  return merged(out);
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
