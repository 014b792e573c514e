/**
 * The cluster-wide settings (tcplane-cluster/config): the service ranges ClusterIPs come
 * from, the node-port range, and the Maglev seed and table limit every node must share
 * to pick the same backend for a flow. Created once, with KV create(), by whoever needs
 * it first (the lab, `tcplane cluster init`, or the first `apply` of a service, with the
 * defaults below); nobody changes it afterwards, since allocations and tables depend on it.
 */
import { randomInt } from 'node:crypto';
import { clusterConfig, CLUSTER_CONFIG_KEY, type ClusterConfig } from '../store/schema.js';
import { StoreError, type Store } from '../store/store.js';
import { MAGLEV_DEFAULT_MAX_SIZE, validateMaglevSize } from './maglev.js';

/** Kubernetes' own defaults for the service range and node ports. */
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';
export const DEFAULT_NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;
/** The largest service range, in host bits (Kubernetes' limit: /12 for IPv4, /108 for IPv6). */
const MAX_SERVICE_HOST_BITS = 20;

export interface ClusterSettings {
  /** The service ranges: an IPv4 one (primary), and an IPv6 one for a dual-stack cluster. */
  serviceCIDRs?: string[];
  nodePortRange?: { min: number; max: number };
  maglevMaxTableSize?: number;
}

/** A new config from settings and defaults, with a fresh random seed; throws naming a bad setting. */
export function newClusterConfig(s: ClusterSettings = {}): ClusterConfig {
  const cfg = {
    v: 1 as const,
    serviceCIDR: s.serviceCIDRs?.[0] ?? DEFAULT_SERVICE_CIDR,
    serviceCIDRs: s.serviceCIDRs ?? [DEFAULT_SERVICE_CIDR],
    nodePortRange: s.nodePortRange ?? { ...DEFAULT_NODE_PORT_RANGE },
    maglevSeed: randomInt(0, 0xffffffff),
    maglevMaxTableSize: s.maglevMaxTableSize ?? MAGLEV_DEFAULT_MAX_SIZE,
  };
  const bad = validateMaglevSize(cfg.maglevMaxTableSize);
  if (bad) throw new Error(`cluster config: maglevMaxTableSize: ${bad}`);
  if (cfg.serviceCIDRs.length === 2 && cfg.serviceCIDRs[0]!.includes(':') === cfg.serviceCIDRs[1]!.includes(':')) {
    throw new Error('cluster config: serviceCIDRs: one range per family (an IPv4 one, then an IPv6 one)');
  }
  for (const c of cfg.serviceCIDRs) {
    const m = /\/(\d+)$/.exec(c);
    const hostBits = (c.includes(':') ? 128 : 32) - Number(m?.[1]);
    if (m && hostBits > MAX_SERVICE_HOST_BITS) {
      throw new Error(`cluster config: serviceCIDRs: ${c} is too large: at most ${MAX_SERVICE_HOST_BITS} host bits (/${c.includes(':') ? 108 : 12}), as Kubernetes allows`);
    }
  }
  const r = clusterConfig.safeParse(cfg);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`cluster config: ${i.path.join('.')}: ${i.message}`);
  }
  return r.data;
}

/** The cluster's config, or undefined when none was created yet. */
export async function readClusterConfig(store: Store): Promise<ClusterConfig | undefined> {
  return (await store.get('cluster', CLUSTER_CONFIG_KEY, clusterConfig))?.value;
}

/**
 * The cluster's config, creating it from `settings` when there is none. A config that
 * exists wins: `created` says whether these settings were the ones taken.
 */
export async function ensureClusterConfig(store: Store, settings: ClusterSettings = {}): Promise<{ config: ClusterConfig; created: boolean }> {
  const have = await readClusterConfig(store);
  if (have) return { config: have, created: false };
  const fresh = newClusterConfig(settings);
  if ((await store.create('cluster', CLUSTER_CONFIG_KEY, fresh)) !== null) return { config: fresh, created: true };
  const theirs = await readClusterConfig(store); // another writer was first
  if (!theirs) throw new StoreError('cluster config: created by another writer but not readable');
  return { config: theirs, created: false };
}
