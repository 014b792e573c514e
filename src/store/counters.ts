/**
 * Per-rule packet and byte counters between the agents and `get policies -o wide`, over
 * core NATS: a request on tcplane.counters is answered by every agent (src/store/gather.ts)
 * with its node's counters, one row per rule its entries use.
 */
import { z } from 'zod';

export const COUNTERS_SUBJECT = 'tcplane.counters';

export const ruleCounterRow = z.object({
  kind: z.string(),
  namespace: z.string().nullable(),
  name: z.string(),
  rule: z.string().nullable(),
  /** Decimal strings: 64-bit counts do not fit a JSON number. */
  packets: z.string().regex(/^\d+$/),
  bytes: z.string().regex(/^\d+$/),
});
export type RuleCounterRow = z.infer<typeof ruleCounterRow>;
