/**
 * Schema parts every policy kind shares (parse.ts, parse-cluster.ts): label selectors
 * with Kubernetes' operator rules, CIDRs, protocols and port numbers, each with its
 * located message.
 */
import { z } from 'zod';
import { Reject, checked, keyOf, labelMap, labelValue, typeOf } from '../yaml/schema-helpers.js';
import { parsePrefix } from './prefix.js';
import type { LabelSelector } from './types.js';

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

const operatorSchema = checked((v) => {
  if (typeof v === 'string' && (OPERATORS as readonly string[]).includes(v)) return v as (typeof OPERATORS)[number];
  return new Reject(v == null ? `required (one of ${OPERATORS.join(', ')})` : `unknown operator ${JSON.stringify(v)} (one of ${OPERATORS.join(', ')})`);
});

const requirementSchema = z
  .strictObject({
    key: keyOf('label'),
    operator: operatorSchema,
    values: z.array(labelValue).nullish(),
  })
  .superRefine((r, ctx) => {
    const n = r.values?.length ?? 0;
    if ((r.operator === 'In' || r.operator === 'NotIn') && n === 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${r.operator} needs at least one value` });
    }
    if ((r.operator === 'Exists' || r.operator === 'DoesNotExist') && n > 0) {
      ctx.addIssue({ code: 'custom', path: ['values'], message: `operator ${r.operator} takes no values` });
    }
  });

export const labelSelectorShape = {
  matchLabels: labelMap.nullish(),
  matchExpressions: z.array(requirementSchema).nullish(),
};
export const labelSelectorSchema = z.strictObject(labelSelectorShape);

export const cidrSchema = checked((v) => {
  if (typeof v !== 'string') return new Reject(v == null ? 'required (a CIDR such as 192.168.1.0/24 or 2001:db8::/64)' : `must be a CIDR string, got ${typeOf(v)}`);
  const p = parsePrefix(v);
  return typeof p === 'string' ? new Reject(p) : p;
});

export const protocolSchema = checked((v) => {
  if (v == null || v === 'TCP') return 'TCP' as const;
  if (v === 'UDP' || v === 'SCTP') return v;
  return new Reject(`unknown protocol ${JSON.stringify(v)} (supported: TCP, UDP, SCTP)`);
});

export const portNumber = (v: unknown): number | Reject =>
  typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535 ? v : new Reject(`must be an integer from 1 to 65535, got ${JSON.stringify(v)}`);

type SelectorIn = z.output<typeof labelSelectorSchema>;

/** A selector as the model holds it: both forms, empty when absent. */
export function selector(s: SelectorIn): LabelSelector {
  return {
    matchLabels: s.matchLabels ?? {},
    matchExpressions: (s.matchExpressions ?? []).map((e) => ({ key: e.key, operator: e.operator, values: e.values ?? [] })),
  };
}

