/**
 * What lives in the cluster store: one JetStream KV bucket per kind of record, every
 * value a versioned JSON document (`{v: 1, ...}`) checked with zod where it is read.
 * A value that fails its schema is reported and skipped by the reader, never trusted.
 *
 * Who writes what:
 *   pods, namespaces  the "API server" side: the lab (or an integration) declares them
 *   policies          `tcplane apply` / `tcplane delete`
 *   services          `tcplane apply` / `tcplane delete`, allocations filled in
 *   allocations       `tcplane apply`, through KV create() only: who holds each cluster
 *                     IP, node port and service port id (src/services/allocate.ts)
 *   cluster           the cluster-wide settings every node must agree on (created once)
 *   endpoints         the agent that owns the pod: its address and security identity
 *   identities        any agent, through KV create() only (see identity.ts)
 *   nodes, status     each agent about itself
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { canonicalIP, isCidr, isIPv4Cidr } from '../datapath/addr.js';
import { IDENTITY } from '../datapath/constants.js';

export const BUCKETS = {
  pods: 'tcplane-pods',
  namespaces: 'tcplane-namespaces',
  policies: 'tcplane-policies',
  endpoints: 'tcplane-endpoints',
  identities: 'tcplane-identities',
  nodes: 'tcplane-nodes',
  status: 'tcplane-status',
  services: 'tcplane-services',
  allocations: 'tcplane-allocations',
  cluster: 'tcplane-cluster',
} as const;
export type BucketKind = keyof typeof BUCKETS;

const labelMap = z.record(z.string(), z.string());
/** What the compiler turns into map keys must parse: checked here, where records arrive. */
export const ipv4 = z.string().refine((s) => isIPv4(s), 'not an IPv4 address');
export const ipv4Cidr = z.string().refine(isIPv4Cidr, 'not an IPv4 CIDR (a.b.c.d/0-32)');
/** An address of either family, read in its canonical text (IPv6 shortest form), so records compare as strings. */
export const ipAddress = z.string().transform((s, ctx) => {
  const c = canonicalIP(s);
  if (c === undefined) {
    ctx.addIssue({ code: 'custom', message: 'not an IP address' });
    return z.NEVER;
  }
  return c;
});
export const cidr = z.string().refine(isCidr, 'not a CIDR (a.b.c.d/0-32 or an IPv6 prefix x::/0-128)');

/** A node's pod ranges: `podCIDRs` where its agent wrote them, else the IPv4 `podCIDR` of an agent from before dual-stack. */
export const nodePodCIDRs = (n: Pick<NodeRecord, 'podCIDR' | 'podCIDRs'>): string[] => n.podCIDRs ?? (n.podCIDR ? [n.podCIDR] : []);

export const containerPort = z.object({
  name: z.string().optional(),
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']),
});

/** tcplane-pods, key `<namespace>/<name>`. */
export const podRecord = z.object({
  v: z.literal(1),
  namespace: z.string(),
  name: z.string(),
  node: z.string(),
  labels: labelMap,
  /** One per family, IPv4 first in a lab. */
  ips: z.array(ipAddress).min(1),
  /** Host-side veth in the node's network namespace; the agent attaches to it. */
  ifname: z.string(),
  ports: z.array(containerPort),
  ready: z.boolean(),
  /** Set while the pod shuts down: not ready, its servers still answer. */
  terminating: z.boolean().optional(),
});
export type PodRecord = z.infer<typeof podRecord>;

/** tcplane-namespaces, key `<name>`. */
export const namespaceRecord = z.object({
  v: z.literal(1),
  name: z.string(),
  labels: labelMap,
});
export type NamespaceRecord = z.infer<typeof namespaceRecord>;

/** tcplane-policies, key `<kind>/<namespace or _cluster>/<name>` (see policyKey). */
export const policyRecord = z.object({
  v: z.literal(1),
  kind: z.string(),
  apiVersion: z.string(),
  namespace: z.string().optional(),
  name: z.string(),
  /** The validated document, as parsed (src/policy/types.ts gives its shape). */
  spec: z.unknown(),
  source: z.object({ file: z.string(), line: z.number().int() }).optional(),
});
export type PolicyRecord = z.infer<typeof policyRecord>;

/** Cluster identities: from 1, below the node-local address classes' range (IDENTITY.LOCAL). */
const identityNumber = z.number().int().min(1).max(IDENTITY.LOCAL - 1);

/** tcplane-endpoints, key `<namespace>/<name>`, written by the pod's node agent. */
export const endpointRecord = z.object({
  v: z.literal(1),
  namespace: z.string(),
  name: z.string(),
  node: z.string(),
  ips: z.array(ipAddress).min(1),
  identity: identityNumber,
});
export type EndpointRecord = z.infer<typeof endpointRecord>;

/** tcplane-identities, key `id/<n>`: what identity n means. */
export const identityRecord = z.object({
  v: z.literal(1),
  id: identityNumber,
  labels: z.object({
    namespace: z.string(),
    pod: labelMap,
    namespaceLabels: labelMap,
  }),
});
export type IdentityRecord = z.infer<typeof identityRecord>;

/** tcplane-identities, key `labels/<sha256 of the canonical labels>`: the claim. */
export const identityClaim = z.object({ v: z.literal(1), id: identityNumber });
export type IdentityClaim = z.infer<typeof identityClaim>;

/** Either record of tcplane-identities (the key's prefix says which it must be). */
export const identityEntry = z.union([identityRecord, identityClaim]);

/** tcplane-nodes, key `<node>`. */
export const nodeRecord = z.object({
  v: z.literal(1),
  name: z.string(),
  addresses: z.array(ipAddress),
  /** The node's IPv4 pod range (what agents before dual-stack read). */
  podCIDR: ipv4Cidr.optional(),
  /** Every pod range of the node, one per family (nodePodCIDRs reads either). */
  podCIDRs: z.array(cidr).optional(),
  /**
   * The node's labels: `kubernetes.io/hostname: <name>` always, the agent's
   * --node-labels when it first registers, then whatever `lab label node` sets (an
   * agent restarting keeps them, as a kubelet does). Absent in a record an agent from
   * before node labels wrote: the next agent registers as if for the first time. (No
   * compare-and-set: a label change in the instant an agent restarts can be lost.)
   */
  labels: z.record(z.string(), z.string()).optional(),
  agentVersion: z.string(),
  startedAt: z.string(),
});
export type NodeRecord = z.infer<typeof nodeRecord>;

/** The label every node carries, its name (as the kubelet sets it). */
export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

/**
 * tcplane-status, key `<node>`: what the agent has enforced. `revisions` holds, per
 * bucket, the last KV revision whose effect is in the node's maps.
 */
export const statusRecord = z.object({
  v: z.literal(1),
  node: z.string(),
  revisions: z.record(z.string(), z.number().int()),
  endpoints: z.number().int(),
  lastReconcile: z.object({
    at: z.string(),
    writes: z.record(z.string(), z.number().int()),
    deletes: z.record(z.string(), z.number().int()),
  }),
  /** Local endpoints whose policy entries did not fit, so they admit nothing (src/datapath/capacity.ts). */
  failedClosed: z
    .array(z.object({ endpoint: z.string(), needed: z.number().int(), limit: z.number().int(), why: z.string() }))
    .optional(),
  updatedAt: z.string(),
});
export type StatusRecord = z.infer<typeof statusRecord>;

/** tcplane-services, key `<namespace>/<name>`. */
export const serviceRecord = z.object({
  v: z.literal(1),
  namespace: z.string(),
  name: z.string(),
  /** The normalized Service with its allocations (src/services/types.ts; checked with serviceSchema). */
  spec: z.unknown(),
  source: z.object({ file: z.string(), line: z.number().int() }).optional(),
});
export type ServiceRecord = z.infer<typeof serviceRecord>;

/**
 * tcplane-allocations, key `clusterip/<ip>`, `nodeport/<port>` or `portid/<n>`: the
 * claim of one value by one service (created with KV create(), so two services never
 * hold the same one).
 */
export const allocationClaim = z.object({
  v: z.literal(1),
  /** `namespace/name` of the service holding it. */
  owner: z.string(),
  createdAt: z.string(),
});
export type AllocationClaim = z.infer<typeof allocationClaim>;

/** tcplane-cluster, key `config`: settings every node and every `apply` must agree on. */
export const clusterConfig = z.object({
  v: z.literal(1),
  /** Where IPv4 ClusterIPs are allocated from (what tools from before dual-stack read). */
  serviceCIDR: ipv4Cidr,
  /**
   * Every service range, one per family, the primary family first (serviceRanges reads
   * either field): a cluster with an IPv6 range is dual-stack for services.
   */
  serviceCIDRs: z.array(cidr).min(1).max(2).optional(),
  nodePortRange: z
    .object({ min: z.number().int().min(1).max(65535), max: z.number().int().min(1).max(65535) })
    .refine((r) => r.min <= r.max, 'min must not exceed max'),
  /** Seed of Maglev permutations and of the datapath's flow hash, the same on every node. */
  maglevSeed: z.number().int().min(0).max(0xffffffff),
  /** The largest Maglev table (a prime of src/services/maglev.ts's ladder). */
  maglevMaxTableSize: z.number().int().min(251),
});
export type ClusterConfig = z.infer<typeof clusterConfig>;
export const CLUSTER_CONFIG_KEY = 'config';

/** The cluster's service ranges, primary family first: serviceCIDRs, or the IPv4 serviceCIDR of a config from before dual-stack. */
export const serviceRanges = (c: Pick<ClusterConfig, 'serviceCIDR' | 'serviceCIDRs'>): string[] => c.serviceCIDRs ?? [c.serviceCIDR];

export const podKey = (namespace: string, name: string) => `${namespace}/${name}`;
export const policyKey = (kind: string, namespace: string | undefined, name: string) =>
  `${kind.toLowerCase()}/${namespace ?? '_cluster'}/${name}`;
