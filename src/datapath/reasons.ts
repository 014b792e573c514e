/**
 * Mirror of enum tp_reason (bpf/include/tp_reasons.h): why a packet passed or dropped.
 * Part of the metrics interface; never renumber. Checked against BTF by the layout test.
 */
export const TP_REASON = {
  TP_REASON_UNUSED_0: 0,
  TP_PASS_ESTABLISHED: 1,
  TP_PASS_REPLY: 2,
  TP_PASS_POLICY: 3,
  TP_PASS_DEFAULT: 4,
  TP_PASS_ARP: 5,
  TP_PASS_NDP: 6,
  TP_PASS_HAIRPIN: 7,
  TP_PASS_UPLINK: 8,
  TP_PASS_EXTERNAL: 9,
  TP_PASS_RELATED: 10,
  TP_AUDIT_POLICY: 11,
  TP_AUDIT_POLICY_DEFAULT: 12,
  TP_DROP_POLICY: 128,
  TP_DROP_POLICY_DEFAULT: 129,
  TP_DROP_TRUNCATED: 130,
  TP_DROP_UNKNOWN_L3: 131,
  TP_DROP_INVALID_IP: 132,
  TP_DROP_FRAGMENT: 133,
  TP_DROP_INVALID_SOURCE: 134,
  TP_DROP_UNKNOWN_DEST: 135,
  TP_DROP_IPV6_EXT: 136,
  TP_REJECT_NO_BACKEND: 137,
  TP_DROP_NO_LOCAL_BACKEND: 138,
  TP_DROP_NAT: 139,
  TP_DROP_FAIL_CLOSED: 140,
  TP_REASON_MAX: 256,
} as const;

export type ReasonName = Exclude<keyof typeof TP_REASON, 'TP_REASON_MAX' | 'TP_REASON_UNUSED_0'>;
export type Reason = (typeof TP_REASON)[ReasonName];

/** Reasons at or above this value drop the packet. */
export const FIRST_DROP_REASON = TP_REASON.TP_DROP_POLICY;

export function isDrop(reason: number): boolean {
  return reason >= FIRST_DROP_REASON;
}

const NAMES = new Map<number, string>(
  Object.entries(TP_REASON)
    .filter(([k]) => k !== 'TP_REASON_MAX')
    .map(([k, v]) => [v, k.replace(/^TP_/, '').toLowerCase()]),
);

/** Short metric-label name of a reason: `drop_policy_default`, `pass_reply`. */
export function reasonName(reason: number): string {
  return NAMES.get(reason) ?? `reason_${reason}`;
}
