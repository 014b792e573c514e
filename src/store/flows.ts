/**
 * Verdict events between the agents and `tcplane observe`, over core NATS (not
 * JetStream: events are a stream to watch, not state to keep):
 *
 *   tcplane.flows.live.<node>   every event of that node, as it is read (one Flow in JSON)
 *   tcplane.flows.history       a request for recent events, to every agent at once: each
 *                               answers (to the reply subject) with the last `last`
 *                               events of its own that match `filter`, oldest first, or
 *                               those since `sinceMs`
 *
 * A Flow is the record DESIGN.md gives for `observe -o json`; the filter and its matcher
 * are shared by the agents (history) and the CLI (the live stream).
 */
import { z } from 'zod';

export const FLOW_SUBJECT_PREFIX = 'tcplane.flows';
export const FLOW_HISTORY_SUBJECT = `${FLOW_SUBJECT_PREFIX}.history`;
/** The live stream of one node; `*` for every node. */
export const flowSubject = (node: string) => `${FLOW_SUBJECT_PREFIX}.live.${node}`;

const endpointSchema = z.object({
  namespace: z.string().nullable(),
  pod: z.string().nullable(),
  /** null: the packet's IP header could not be read. */
  ip: z.string().nullable(),
  port: z.number().int().nullable(),
  identity: z.number().int().nullable(),
});

const policyRefSchema = z.object({
  kind: z.string(),
  namespace: z.string().nullable(),
  name: z.string(),
  rule: z.string().nullable(),
});

export const flowSchema = z.object({
  time: z.string(),
  node: z.string(),
  verdict: z.enum(['forwarded', 'dropped', 'rejected', 'audit']),
  reason: z.string(),
  direction: z.enum(['ingress', 'egress']),
  protocol: z.string(),
  family: z.union([z.literal(4), z.literal(6)]).nullable(),
  source: endpointSchema,
  destination: endpointSchema,
  service: z.string().nullable(),
  policies: z.array(policyRefSchema),
  /** An allowed new connection reported as one of the sample (the others were not). */
  sampled: z.boolean(),
  /** Events of the same endpoint the datapath's rate limit held back just before this one. */
  suppressed: z.number().int(),
});
export type Flow = z.infer<typeof flowSchema>;
export type FlowEndpoint = z.infer<typeof endpointSchema>;

export interface FlowFilter {
  namespace?: string;
  /** `ns/name` or `name`: either side. */
  pod?: string;
  fromPod?: string;
  toPod?: string;
  verdict?: Flow['verdict'];
  /** A policy's name, or `ns/name`, among those that decided. */
  policy?: string;
  port?: number;
  protocol?: string;
  node?: string;
}

export const flowFilterSchema = z.object({
  namespace: z.string().optional(),
  pod: z.string().optional(),
  fromPod: z.string().optional(),
  toPod: z.string().optional(),
  verdict: z.enum(['forwarded', 'dropped', 'rejected', 'audit']).optional(),
  policy: z.string().optional(),
  port: z.number().int().optional(),
  protocol: z.string().optional(),
  node: z.string().optional(),
});

export const historyRequestSchema = z.object({
  filter: flowFilterSchema,
  last: z.number().int().positive().optional(),
  sinceMs: z.number().optional(),
});
export type HistoryRequest = z.infer<typeof historyRequestSchema>;

/** Whether endpoint e is pod `want` (`ns/name`, or a bare name in any namespace). */
function isPod(e: FlowEndpoint, want: string): boolean {
  if (e.pod === null) return false;
  const slash = want.indexOf('/');
  return slash < 0 ? e.pod === want : e.namespace === want.slice(0, slash) && e.pod === want.slice(slash + 1);
}

const policyMatches = (p: Flow['policies'][number], want: string) => (want.includes('/') ? `${p.namespace}/${p.name}` === want : p.name === want);

/** Whether flow f passes every filter given. */
export function flowMatches(f: Flow, filter: FlowFilter): boolean {
  if (filter.namespace !== undefined && f.source.namespace !== filter.namespace && f.destination.namespace !== filter.namespace) return false;
  if (filter.pod !== undefined && !isPod(f.source, filter.pod) && !isPod(f.destination, filter.pod)) return false;
  if (filter.fromPod !== undefined && !isPod(f.source, filter.fromPod)) return false;
  if (filter.toPod !== undefined && !isPod(f.destination, filter.toPod)) return false;
  if (filter.verdict !== undefined && f.verdict !== filter.verdict) return false;
  if (filter.policy !== undefined && !f.policies.some((p) => policyMatches(p, filter.policy!))) return false;
  if (filter.port !== undefined && f.source.port !== filter.port && f.destination.port !== filter.port) return false;
  if (filter.protocol !== undefined && f.protocol.toLowerCase() !== filter.protocol.toLowerCase()) return false;
  if (filter.node !== undefined && f.node !== filter.node) return false;
  return true;
}
