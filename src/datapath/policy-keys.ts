/**
 * Policy entries as the datapath keys them (bpf/include/tp_policy.h): an LPM trie over
 * endpoint | identity | direction | protocol | dport, so "any protocol", "any port" and a
 * block of ports sharing leading bits are each one prefix. A compiler above this layer
 * says what an endpoint admits per identity, protocol and port block; this file turns
 * that into keys, and a port range into the fewest blocks that cover it exactly.
 */
import { TP_POLICY_PREFIX, VERDICT_ALLOW, VERDICT_AUDIT, VERDICT_DENY } from './constants.js';
import type { Entry } from './desired.js';
import type { TpPolicyKey, TpPolicyValue } from './structs.js';

/** Ports sharing their top `bits` bits with `port` (bits 16: that port alone). */
export interface PortBlock {
  port: number;
  bits: number;
}

/** What a policy entry covers besides its endpoint, identity and direction. */
export type PolicyTraffic = 'any' | { protocol: number; ports: 'any' | PortBlock };

/** The aligned blocks that cover from…to (inclusive, 0 ≤ from ≤ to ≤ 65535) exactly, lowest first. */
export function portBlocks(from: number, to: number): PortBlock[] {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > 0xffff || from > to) {
    throw new RangeError(`not a port range: ${from}-${to}`);
  }
  const out: PortBlock[] = [];
  let lo = from;
  while (lo <= to) {
    // The largest block starting at lo that is aligned and stays within the range.
    let size = 1;
    while (size < 0x10000 && lo % (size * 2) === 0 && lo + size * 2 - 1 <= to) size *= 2;
    out.push({ port: lo, bits: 16 - Math.log2(size) });
    lo += size;
  }
  return out;
}

/** The key of one policy entry. */
export function policyKey(endpointId: number, identity: number, direction: number, traffic: PolicyTraffic): TpPolicyKey {
  if (traffic === 'any') {
    return { prefixlen: TP_POLICY_PREFIX.TP_POLICY_PREFIX_ANY_PROTO, endpoint_id: endpointId, identity, direction, protocol: 0, dport: 0 };
  }
  if (traffic.ports === 'any') {
    return { prefixlen: TP_POLICY_PREFIX.TP_POLICY_PREFIX_ANY_PORT, endpoint_id: endpointId, identity, direction, protocol: traffic.protocol, dport: 0 };
  }
  const { port, bits } = traffic.ports;
  // Host bits of the block are zero in the key, as the trie stores it.
  const mask = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
  return { prefixlen: TP_POLICY_PREFIX.TP_POLICY_PREFIX_ANY_PORT + bits, endpoint_id: endpointId, identity, direction, protocol: traffic.protocol, dport: port & mask };
}

/** One policy entry: its key, and the verdict with the rule that decided it. */
export function policyEntry(
  endpointId: number,
  identity: number,
  direction: number,
  traffic: PolicyTraffic,
  action: 'allow' | 'deny' | 'audit',
  ruleId: number,
): Entry<TpPolicyKey, TpPolicyValue> {
  const verdict = action === 'allow' ? VERDICT_ALLOW : action === 'deny' ? VERDICT_DENY : VERDICT_AUDIT;
  return { key: policyKey(endpointId, identity, direction, traffic), value: { verdict, rule_id: ruleId } };
}
