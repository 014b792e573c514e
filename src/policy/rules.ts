/**
 * The explicit rule model the resolver works on (resolve.ts): what one local endpoint's
 * policies say in one direction, whatever kind of policy said it. A rule matches a set
 * of peer identities (or every peer), a protocol with a port range (or all traffic), and
 * gives an action; when several rules match a packet, the one that comes first wins:
 * lower `priority` first, then lower `ruleId`. NetworkPolicy gives every rule one
 * priority (its rules only allow, and add up); ordered kinds (tiers, rule order) encode
 * their order in `priority`. A `pass` rule decides nothing itself: for the traffic it
 * matches, every rule of priority below its `passTo` stops applying, so the first rule
 * from `passTo` on decides (the next tier; ClusterNetworkPolicy's Pass).
 */

export type RuleAction = 'allow' | 'deny' | 'pass';
/**
 * What a packet gets in the end: pass is never a verdict; audit (resolve.ts'
 * resolveAudited) passes what an audited rule or default would have denied.
 */
export type VerdictAction = Exclude<RuleAction, 'pass'> | 'audit';

/** Inclusive; 0 ≤ from ≤ to ≤ 65535. */
export interface PortRange {
  from: number;
  to: number;
}

/** All traffic, or one protocol (IP protocol number) on a port range or on every port. */
export type RuleTraffic = 'any' | { protocol: number; ports: 'any' | PortRange };

export interface PolicyRule {
  /** Peer identities the rule matches, or 'any' peer (identities nobody listed included). */
  peers: 'any' | ReadonlySet<number>;
  traffic: RuleTraffic;
  action: RuleAction;
  /** Lower first. */
  priority: number;
  /** A pass rule's: the lowest priority that still applies to what it matches (above its own). */
  passTo?: number;
  /** The rule's id in entries and conntrack (see RuleInfo); orders rules of equal priority. */
  ruleId: number;
}

/** What decides a packet: an action, and the rule that gave it (0: the endpoint's default). */
export interface Verdict {
  action: VerdictAction;
  ruleId: number;
}

/** Whether rule a comes before rule b. */
export function precedes(a: PolicyRule, b: PolicyRule): boolean {
  return a.priority !== b.priority ? a.priority < b.priority : a.ruleId < b.ruleId;
}
