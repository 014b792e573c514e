/**
 * The normalized policy model as it travels through the store: `tcplane apply` writes
 * documents `parsePolicyText` produced, agents check them with this schema where they
 * arrive (a corrupt or foreign value is reported and skipped, never enforced half-read).
 */
import { z } from 'zod';
import type { PolicyDocument } from './types.js';

const labelSelector = z.strictObject({ matchLabels: z.record(z.string(), z.string()) });
const peer = z
  .strictObject({ podSelector: labelSelector.optional(), namespaceSelector: labelSelector.optional() })
  .refine((p) => p.podSelector || p.namespaceSelector, 'a peer needs podSelector or namespaceSelector');
const port = z.strictObject({
  protocol: z.enum(['TCP', 'UDP']),
  port: z.number().int().min(1).max(65535).optional(),
});

export const networkPolicySchema = z.strictObject({
  kind: z.literal('NetworkPolicy'),
  apiVersion: z.literal('networking.k8s.io/v1'),
  namespace: z.string().min(1),
  name: z.string().min(1),
  podSelector: labelSelector,
  policyTypes: z.array(z.literal('Ingress')),
  ingress: z.array(z.strictObject({ from: z.array(peer).optional(), ports: z.array(port).optional() })),
  source: z.strictObject({ file: z.string(), line: z.number().int() }),
});

export const policyDocumentSchema: z.ZodType<PolicyDocument> = networkPolicySchema;
