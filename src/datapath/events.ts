/**
 * Verdict events as the datapath reports them (bpf/include/tp_event.h), decoded: the
 * packet's addresses and ports, where and why it was judged, and the ids the agent turns
 * into names (endpoint, identities, rule). Naming is the agent's job (agent/flows.ts).
 */
import { addrString } from './addr.js';
import { DIR_INGRESS, TP_EVENT_FLAGS } from './constants.js';
import { reasonName, TP_REASON } from './reasons.js';
import { tpEvent } from './structs.js';

export type EventVerdict = 'forwarded' | 'dropped' | 'rejected' | 'audit';

export interface DatapathEvent {
  /** CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns). */
  monoNs: bigint;
  /** null: the IP header could not be read (a truncated packet). */
  family: 4 | 6 | null;
  protocol: number;
  /** The packet as it arrived: for a service connection `dst` is the frontend; ip null with family. */
  src: { ip: string | null; port: number };
  dst: { ip: string | null; port: number };
  /** The backend a service connection was translated to. */
  backend: { ip: string; port: number } | null;
  /** The service port (its id) of a connection to a frontend; 0: none. */
  serviceId: number;
  direction: 'ingress' | 'egress';
  reason: number;
  reasonName: string;
  verdict: EventVerdict;
  /** 0: no local pod (a packet from the uplink to a frontend). */
  endpointId: number;
  identity: number;
  /** 0: not looked up (a malformed packet, say). */
  peerIdentity: number;
  /** 0: the endpoint's default. */
  ruleId: number;
  /** An allowed new connection reported as one of the sample. */
  sampled: boolean;
  tcpFlags: number;
  /** Events of this endpoint the rate limit held back since its previous one. */
  suppressed: number;
}

/** The verdict class of a reason, as `observe` names it. */
export function verdictOf(reason: number): EventVerdict {
  if (reason === TP_REASON.TP_REJECT_NO_BACKEND) return 'rejected';
  if (reason === TP_REASON.TP_AUDIT_POLICY || reason === TP_REASON.TP_AUDIT_POLICY_DEFAULT) return 'audit';
  return reason >= TP_REASON.TP_DROP_POLICY ? 'dropped' : 'forwarded';
}

/** One ring buffer record, decoded; null when it is not a whole record (never expected). */
export function decodeEvent(record: Buffer): DatapathEvent | null {
  if (record.length < tpEvent.size) return null;
  const e = tpEvent.decode(record);
  const family = e.family === 4 || e.family === 6 ? e.family : null;
  const ip = (addr: Buffer) => (family ? addrString(family, addr) : null);
  const translated = (e.flags & TP_EVENT_FLAGS.TP_EVENT_F_XLATE) !== 0;
  return {
    monoNs: e.time_ns,
    family,
    protocol: e.protocol,
    src: { ip: ip(e.saddr), port: e.sport },
    dst: { ip: ip(e.daddr), port: e.dport },
    backend: translated && family ? { ip: addrString(family, e.xaddr), port: e.xport } : null,
    serviceId: e.service_id,
    direction: e.direction === DIR_INGRESS ? 'ingress' : 'egress',
    reason: e.reason,
    reasonName: reasonName(e.reason),
    verdict: verdictOf(e.reason),
    endpointId: e.endpoint_id,
    identity: e.identity,
    peerIdentity: e.peer_identity,
    ruleId: e.rule_id,
    sampled: (e.flags & TP_EVENT_FLAGS.TP_EVENT_F_SAMPLED) !== 0,
    tcpFlags: e.tcp_flags,
    suppressed: e.suppressed,
  };
}
