/**
 * The normalized policy model as it travels through the store: `tcplane apply` writes
 * documents `parsePolicyText` produced, agents check them with this schema where they
 * arrive (a corrupt or foreign value is reported and skipped, never enforced half-read).
 * A record from an earlier tcplane (no matchExpressions, no egress) reads as the same
 * policy: those fields default to empty.
 */
import { z } from 'zod';
import type { PolicyDocument } from './types.js';

const requirement = z.strictObject({
  key: z.string().min(1),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()),
});
const labelSelector = z.strictObject({
  matchLabels: z.record(z.string(), z.string()),
  matchExpressions: z.array(requirement).default([]),
});
const peer = z
  .strictObject({ podSelector: labelSelector.optional(), namespaceSelector: labelSelector.optional() })
  .refine((p) => p.podSelector || p.namespaceSelector, 'a peer needs podSelector or namespaceSelector');
const port = z
  .strictObject({
    protocol: z.enum(['TCP', 'UDP', 'SCTP']),
    port: z.union([z.number().int().min(1).max(65535), z.string().min(1)]).optional(),
    endPort: z.number().int().min(1).max(65535).optional(),
  })
  .refine((p) => p.endPort === undefined || (typeof p.port === 'number' && p.endPort >= p.port), 'endPort needs a numeric port at or below it');

export const networkPolicySchema = z.strictObject({
  kind: z.literal('NetworkPolicy'),
  apiVersion: z.literal('networking.k8s.io/v1'),
  namespace: z.string().min(1),
  name: z.string().min(1),
  podSelector: labelSelector,
  policyTypes: z.array(z.enum(['Ingress', 'Egress'])),
  ingress: z.array(z.strictObject({ from: z.array(peer).optional(), ports: z.array(port).optional() })),
  egress: z.array(z.strictObject({ to: z.array(peer).optional(), ports: z.array(port).optional() })).default([]),
  source: z.strictObject({ file: z.string(), line: z.number().int() }),
});

export const policyDocumentSchema: z.ZodType<PolicyDocument, unknown> = networkPolicySchema;
