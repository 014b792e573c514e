/**
 * Compiles the desired state of one node into BPF map contents.
 *
 * Everything the datapath decides per packet is decided here, ahead of time:
 *   - which local pods are isolated, per direction (endpoint defaults)
 *   - which peer identities may reach them on which protocol/port (policy entries)
 *   - which identity every known address has (ipcache)
 * The output is plain data (codec values), so it can be diffed against what the maps
 * hold and written as the difference.
 *
 * NetworkPolicy semantics (networking.k8s.io/v1), v0 subset:
 *   - a pod is isolated for ingress when any NetworkPolicy of its namespace selects it
 *     (podSelector) and lists Ingress in policyTypes; otherwise all ingress is allowed
 *   - policies are additive: an isolated pod admits what any selecting policy allows
 *   - a rule's peers: `from` missing → any source; podSelector → pods of the policy's
 *     namespace; namespaceSelector → pods of matching namespaces; both → their AND
 *   - a rule's ports: missing → every protocol and port; protocol without port → every
 *     port of that protocol
 *   - traffic from the pod's own node (reserved:host) is always admitted, as kubelet
 *     probes need (Cilium's allow-localhost default)
 * Only allow entries exist in v0. With allow-only entries, "the first hit decides" (the
 * datapath's two lookups, peer identity then any-peer) gives the same answer as "any
 * entry matching allows", so no cross-entry merging is needed; kinds that bring deny or
 * ordered rules must resolve overlaps here before emitting (see tp_policy.h).
 */
import { createHash } from 'node:crypto';
import { IDENTITY, DIR_INGRESS, PROTO, TP_POLICY_PREFIX, VERDICT_ALLOW, VERDICT_DENY } from '../datapath/constants.js';
import { ipcidrKey, ipKey } from '../datapath/addr.js';
import type { Entry, PolicyMaps, RuleInfo } from '../datapath/desired.js';
import type { TpEndpoint, TpIpcacheValue, TpIpKey, TpPolicyKey, TpPolicyValue } from '../datapath/structs.js';
import type { IdentityLabels } from '../identity/labels.js';
import { matchesSelector } from './selector.js';
import type { IngressRule, NetworkPolicy, PolicyDocument, PolicyPeer, PolicyPort } from './types.js';

export interface LocalEndpoint {
  /** `namespace/name` */
  key: string;
  namespace: string;
  name: string;
  ips: string[];
  /** Endpoint id used in policy keys (the host-side veth's ifindex). */
  id: number;
  ifindex: number;
  identity: number;
  /** The pod's own labels (policy podSelector matches these). */
  labels: Record<string, string>;
}

export interface ClusterEndpoint {
  ips: string[];
  identity: number;
}

export interface ClusterNode {
  name: string;
  addresses: string[];
  podCIDR?: string;
}

export interface DesiredInput {
  node: string;
  localEndpoints: readonly LocalEndpoint[];
  /** Every endpoint of the cluster (local ones included), for the ipcache. */
  clusterEndpoints: readonly ClusterEndpoint[];
  /** Every allocated identity and what it means. */
  identities: ReadonlyMap<number, IdentityLabels>;
  policies: readonly PolicyDocument[];
  nodes: readonly ClusterNode[];
  /** This node's own addresses (reserved:host). */
  hostAddresses: readonly string[];
}

/** Rule ids below this are tcplane's own rules; ids of policy rules have the top bit set. */
export const RULE_ID = {
  DEFAULT: 0,
  ALLOW_HOST: 1,
} as const;

/** A stable 31-bit id for a policy rule (top bit set), the same on every node and run. */
export function ruleId(description: string): number {
  return (createHash('sha256').update(description).digest().readUInt32LE(0) | 0x80000000) >>> 0;
}

export function compile(input: DesiredInput): PolicyMaps {
  const rules = new Map<number, RuleInfo>();
  const endpoints: Entry<TpIpKey, TpEndpoint>[] = [];
  const policy = new Map<string, Entry<TpPolicyKey, TpPolicyValue>>();
  const networkPolicies = input.policies.filter((p): p is NetworkPolicy => p.kind === 'NetworkPolicy');
  // Only identities some endpoint holds get entries: allocated identities are never
  // reused for other labels, and one nobody holds cannot send a packet.
  const inUse = new Set(input.clusterEndpoints.map((e) => e.identity));
  const liveIdentities = new Map([...input.identities].filter(([id]) => inUse.has(id)));

  for (const ep of input.localEndpoints) {
    const selecting = networkPolicies.filter(
      (p) => p.namespace === ep.namespace && p.policyTypes.includes('Ingress') && matchesSelector(p.podSelector, ep.labels),
    );
    const isolated = selecting.length > 0;
    for (const ip of ep.ips) {
      endpoints.push({
        key: ipKey(ip),
        value: {
          id: ep.id,
          identity: ep.identity,
          ifindex: ep.ifindex,
          ingress_default: isolated ? VERDICT_DENY : VERDICT_ALLOW,
          egress_default: VERDICT_ALLOW,
        },
      });
    }
    if (!isolated) continue;

    const add = (identity: number, port: PolicyPort | undefined, rule: RuleInfo) => {
      rules.set(rule.id, rule);
      const key = policyKey(ep.id, identity, port);
      const k = `${key.prefixlen}/${key.identity}/${key.protocol}/${key.dport}/${ep.id}`;
      const existing = policy.get(k);
      // Several rules may allow the same thing; report the lowest id, whichever order
      // the policies arrived in.
      if (!existing || existing.value.rule_id > rule.id) policy.set(k, { key, value: { verdict: VERDICT_ALLOW, rule_id: rule.id } });
    };

    add(IDENTITY.HOST, undefined, { id: RULE_ID.ALLOW_HOST, description: 'tcplane: allow from the local node (reserved:host)' });
    for (const p of selecting) {
      p.ingress.forEach((rule, i) => {
        const info: RuleInfo = { id: 0, description: `NetworkPolicy ${p.namespace}/${p.name} ingress[${i}]` };
        info.id = ruleId(info.description);
        const peers = peerIdentities(p, rule, liveIdentities);
        const ports = rule.ports ?? [undefined];
        for (const identity of peers) for (const port of ports) add(identity, port, info);
      });
    }
  }

  const ipcache = new Map<string, Entry<TpIpKey, TpIpcacheValue>>();
  const setIp = (ip: string, identity: number) => ipcache.set(ip, { key: ipKey(ip), value: { identity } });
  for (const n of input.nodes) for (const a of n.addresses) setIp(a, IDENTITY.REMOTE_NODE);
  for (const e of input.clusterEndpoints) for (const ip of e.ips) setIp(ip, e.identity);
  for (const a of input.hostAddresses) setIp(a, IDENTITY.HOST);

  const ipcidr = input.nodes
    .filter((n) => n.podCIDR)
    .map((n) => ({ key: ipcidrKey(n.podCIDR!), value: { identity: IDENTITY.UNMANAGED } }));

  return {
    endpoints,
    ipcache: [...ipcache.values()],
    ipcidr,
    policy: [...policy.values()],
    rules: [...rules.values()].sort((a, b) => a.id - b.id),
  };
}

/** Identities a rule admits; [IDENTITY.ANY] when it admits every source. */
function peerIdentities(p: NetworkPolicy, rule: IngressRule, identities: ReadonlyMap<number, IdentityLabels>): number[] {
  if (!rule.from) return [IDENTITY.ANY];
  const out = new Set<number>();
  for (const [id, labels] of identities) {
    if (rule.from.some((peer) => peerMatches(p, peer, labels))) out.add(id);
  }
  return [...out].sort((a, b) => a - b);
}

function peerMatches(p: NetworkPolicy, peer: PolicyPeer, l: IdentityLabels): boolean {
  if (peer.namespaceSelector) {
    if (!matchesSelector(peer.namespaceSelector, l.namespaceLabels)) return false;
  } else if (l.namespace !== p.namespace) {
    return false;
  }
  return peer.podSelector ? matchesSelector(peer.podSelector, l.pod) : true;
}

const PROTOCOL_NUMBER = { TCP: PROTO.TCP, UDP: PROTO.UDP } as const;

function policyKey(endpointId: number, identity: number, port: PolicyPort | undefined): TpPolicyKey {
  if (!port) {
    return { prefixlen: TP_POLICY_PREFIX.TP_POLICY_PREFIX_ANY_PROTO, endpoint_id: endpointId, identity, direction: DIR_INGRESS, protocol: 0, dport: 0 };
  }
  return {
    prefixlen: port.port === undefined ? TP_POLICY_PREFIX.TP_POLICY_PREFIX_ANY_PORT : TP_POLICY_PREFIX.TP_POLICY_PREFIX_FULL,
    endpoint_id: endpointId,
    identity,
    direction: DIR_INGRESS,
    protocol: PROTOCOL_NUMBER[port.protocol],
    dport: port.port ?? 0,
  };
}
