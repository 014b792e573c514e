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
 * NetworkPolicy semantics (networking.k8s.io/v1):
 *   - a pod is isolated in a direction when a NetworkPolicy of its namespace selects it
 *     (podSelector) and lists that direction in policyTypes; otherwise everything is
 *     allowed that way
 *   - policies add up: an isolated pod allows what any selecting policy's rule allows
 *   - a rule's peers: missing → every peer; podSelector → pods of the policy's
 *     namespace; namespaceSelector → pods of matching namespaces; both in one peer →
 *     their AND; ipBlock → the addresses in its cidr and in none of its except, pods'
 *     addresses included, one by one (address-classes.ts); several peers → their OR
 *   - a rule's ports: missing → all traffic; protocol without port → every port of that
 *     protocol; endPort → the range; a named port → the number the destination pod
 *     declares under that name and protocol, or nothing where it declares none: the
 *     protected pod's own for ingress, each peer's for egress (address-classes.ts)
 *   - traffic to and from the pod's own node (reserved:host) is always allowed, as
 *     Kubernetes says (kubelet probes, node-local services; Cilium's allow-localhost)
 * Cluster policies (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy)
 * wrap those in tiers, for the pods their subject selects, per direction:
 *   Admin tier      policies by priority (equal priorities: ClusterNetworkPolicy, then
 *                   AdminNetworkPolicy, then by name), rules in order; the first rule that
 *                   matches decides (Accept, Deny) or hands over to the next tier (Pass)
 *   NetworkPolicy   as above: when a NetworkPolicy isolates the pod that way, it decides
 *                   everything left (what it does not allow is denied)
 *   Baseline tier   only for a pod no NetworkPolicy isolates that way; rules as in Admin
 *                   (a Pass hands over to the default)
 *   default         allow
 * Traffic from the pod's own node is allowed before every tier; traffic to it after the
 * Admin tier (whose nodes and networks peers may deny it), before the others.
 * Each endpoint's rules per direction go to the resolver (resolve.ts), which writes the
 * entries whose first hit is the deciding rule's verdict.
 */
import { createHash } from 'node:crypto';
import { DIR_EGRESS, DIR_INGRESS, IDENTITY, PROTO, VERDICT_ALLOW, VERDICT_AUDIT, VERDICT_DENY, type Direction } from '../datapath/constants.js';
import { ipcidrKey, ipKey } from '../datapath/addr.js';
import type { Entry, Isolation, PolicyMaps, PolicyRef, RuleInfo } from '../datapath/desired.js';
import { policyEntry } from '../datapath/policy-keys.js';
import type { TpEndpoint, TpIpcacheValue, TpIpKey, TpPolicyKey, TpPolicyValue } from '../datapath/structs.js';
import type { IdentityLabels } from '../identity/labels.js';
import { addressClasses, type AddressClasses } from './address-classes.js';
import { prefixHasAddress, prefixOf } from './prefix.js';
import { resolve, resolveAudited, type RuleView } from './resolve.js';
import { namespaceAudited } from './audit-annotation.js';
import type { PolicyRule, RuleAction, RuleTraffic } from './rules.js';
import { matchesSelector } from './selector.js';
import type {
  ClusterAction,
  ClusterNetworkPolicy,
  ClusterPeer,
  ClusterPort,
  ClusterRule,
  ClusterSelector,
  DeclaredPort,
  NetworkPolicy,
  PolicyDocument,
  PolicyPeer,
  PolicyPort,
  PolicyType,
} from './types.js';

export type { DeclaredPort } from './types.js';

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
  /** The ports it declares; named ports in rules that protect it resolve against these. */
  ports: readonly DeclaredPort[];
}

export interface ClusterEndpoint {
  ips: string[];
  identity: number;
  /** The ports the pod declares (named ports of egress rules resolve against them). */
  ports?: readonly DeclaredPort[];
}

export interface ClusterNode {
  name: string;
  addresses: readonly string[];
  /** One per family. */
  podCIDRs: readonly string[];
  /** What cluster policies' nodes peers select by. */
  labels?: Readonly<Record<string, string>>;
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
  /** This node's labels (cluster policies' nodes peers may select it). */
  hostLabels?: Readonly<Record<string, string>>;
}

/** Rule ids below this are tcplane's own rules; ids of policy rules have the top bit set. */
export const RULE_ID = {
  DEFAULT: 0,
  ALLOW_HOST: 1,
  ALLOW_TO_HOST: 2,
} as const;

/** A stable 31-bit id for a policy rule (top bit set), the same on every node and run. */
export function ruleId(description: string): number {
  return (createHash('sha256').update(description).digest().readUInt32LE(0) | 0x80000000) >>> 0;
}

export function compile(input: DesiredInput): PolicyMaps {
  const described = new Map<number, RuleInfo>();
  const endpoints: Entry<TpIpKey, TpEndpoint>[] = [];
  const policy: Entry<TpPolicyKey, TpPolicyValue>[] = [];
  const networkPolicies = input.policies.filter((p): p is NetworkPolicy => p.kind === 'NetworkPolicy');
  const clusterPolicies = clusterOrder(input.policies.filter((p): p is ClusterNetworkPolicy => p.kind !== 'NetworkPolicy'));
  // Only identities some endpoint holds get entries: allocated identities are never
  // reused for other labels, and one nobody holds cannot send a packet.
  const inUse = new Set(input.clusterEndpoints.map((e) => e.identity));
  const liveIdentities = new Map([...input.identities].filter(([id]) => inUse.has(id)));
  const classes = addressClasses({ policies: input.policies, pods: input.clusterEndpoints, nodes: input.nodes });
  // A rule's peers are the same identities for every endpoint it protects: found once
  // per policy (its namespace is part of what they mean) and rule.
  const peerSets = new WeakMap<NetworkPolicy, WeakMap<readonly PolicyPeer[], Set<number>>>();
  const peersOf = (p: NetworkPolicy, peers: readonly PolicyPeer[]) => {
    const of = peerSets.get(p) ?? peerSets.set(p, new WeakMap()).get(p)!;
    return of.get(peers) ?? of.set(peers, peerIdentities(p, peers, liveIdentities, classes)).get(peers)!;
  };
  // Likewise a rule's id (a hash of its description), once per policy, direction and rule.
  const infos = new Map<string, RuleInfo>();
  const infoOf = (description: string, policy: PolicyRef) => infos.get(description) ?? infos.set(description, { id: ruleId(description), description, policy }).get(description)!;
  const isolation: Isolation[] = [];

  const clusterPeersOf = new WeakMap<ClusterPeer, Set<number>>();
  const clusterPeers = (peer: ClusterPeer) =>
    clusterPeersOf.get(peer) ?? clusterPeersOf.set(peer, clusterPeerIdentities(peer, liveIdentities, classes, input)).get(peer)!;

  for (const ep of input.localEndpoints) {
    const selecting = (type: PolicyType) =>
      networkPolicies.filter((p) => p.namespace === ep.namespace && p.policyTypes.includes(type) && matchesSelector(p.podSelector, ep.labels));
    const ingress = selecting('Ingress');
    const egress = selecting('Egress');
    const namespaceLabels = input.identities.get(ep.identity)?.namespaceLabels ?? {};
    const subjectOf = clusterPolicies.filter((p) => subjectSelects(p.subject, ep, namespaceLabels));
    // Audit mode: a namespace labelled for it audits every policy for its pods.
    const enforcedOnly = <T extends { audit?: true }>(list: readonly T[]): T[] => (namespaceAudited(namespaceLabels) ? [] : list.filter((p) => !p.audit));
    const defaults: Record<Direction, number> = { [DIR_INGRESS]: VERDICT_ALLOW, [DIR_EGRESS]: VERDICT_ALLOW };
    const directions: [Direction, NetworkPolicy[]][] = [
      [DIR_INGRESS, ingress],
      [DIR_EGRESS, egress],
    ];
    for (const [dir, policies] of directions) {
      if (policies.length > 0) {
        const direction = dir === DIR_INGRESS ? 'ingress' : 'egress';
        isolation.push({ endpointId: ep.id, direction, policies: policies.map((p) => ({ kind: p.kind, namespace: p.namespace, name: p.name, rule: null })) });
      }
      const cluster = subjectOf.filter((p) => (dir === DIR_INGRESS ? p.ingress : p.egress).length > 0);
      if (policies.length === 0 && cluster.length === 0) continue;
      const ctx = { peersOf, infoOf, classes, clusterPeers };
      const view = (nps: readonly NetworkPolicy[], cps: readonly ClusterNetworkPolicy[]): RuleView => ({
        rules: [...endpointRules(ep, dir, nps, ctx, described), ...clusterRules(ep, dir, cps, nps.length > 0, ctx, described)],
        // What no rule decides: denied where a NetworkPolicy isolates the pod, else allowed (Kubernetes' default).
        fallback: { action: nps.length > 0 ? 'deny' : 'allow', ruleId: RULE_ID.DEFAULT },
      });
      const all = view(policies, cluster);
      const [enforcedNps, enforcedCps] = [enforcedOnly(policies), enforcedOnly(cluster)];
      const audited = enforcedNps.length < policies.length || enforcedCps.length < cluster.length;
      const enforced = audited ? view(enforcedNps, enforcedCps) : all;
      defaults[dir] = enforced.fallback.action === 'deny' ? VERDICT_DENY : all.fallback.action === 'deny' ? VERDICT_AUDIT : VERDICT_ALLOW;
      for (const e of audited ? resolveAudited(enforced, all) : resolve(all.rules, all.fallback)) {
        policy.push(policyEntry(ep.id, e.identity, dir, e.traffic, e.verdict.action, e.verdict.ruleId));
      }
    }
    for (const ip of ep.ips) {
      endpoints.push({
        key: ipKey(ip),
        value: {
          id: ep.id,
          identity: ep.identity,
          ifindex: ep.ifindex,
          ingress_default: defaults[DIR_INGRESS],
          egress_default: defaults[DIR_EGRESS],
          policy_gen: 0, // the map writer moves it (src/datapath/policy-generation.ts)
        },
      });
    }
  }

  const ipcache = new Map<string, Entry<TpIpKey, TpIpcacheValue>>();
  const setIp = (ip: string, identity: number) => ipcache.set(ip, { key: ipKey(ip), value: { identity } });
  for (const n of input.nodes) for (const a of n.addresses) setIp(a, classes.nodeAddress(a));
  for (const e of input.clusterEndpoints) for (const ip of e.ips) setIp(ip, classes.podAddress(ip, e.identity));
  for (const a of input.hostAddresses) setIp(a, IDENTITY.HOST);

  const ipcidr = classes.prefixes.map((c) => ({ key: ipcidrKey(c.cidr), value: { identity: c.identity } }));

  const used = new Set(policy.map((e) => e.value.rule_id));
  return {
    endpoints,
    ipcache: [...ipcache.values()],
    ipcidr,
    policy,
    rules: [...described.values()].filter((r) => used.has(r.id)).sort((a, b) => a.id - b.id),
    isolation,
  };
}

interface RuleContext {
  /** The identities a rule's peers select (remembered across endpoints). */
  peersOf: (p: NetworkPolicy, peers: readonly PolicyPeer[]) => Set<number>;
  /** The identities a cluster rule's peer selects (remembered across endpoints). */
  clusterPeers: (peer: ClusterPeer) => Set<number>;
  /** A rule's id and description (remembered across endpoints). */
  infoOf: (description: string, policy: PolicyRef) => RuleInfo;
  classes: AddressClasses;
}

/**
 * The rule model of what `policies` (those selecting ep in direction dir) allow it; every
 * rule's description goes into `described`.
 */
function endpointRules(ep: LocalEndpoint, dir: Direction, policies: readonly NetworkPolicy[], { peersOf, infoOf, classes }: RuleContext, described: Map<number, RuleInfo>): PolicyRule[] {
  const rules: PolicyRule[] = [];
  const addHost = (info: RuleInfo) => {
    described.set(info.id, info);
    // From the node: before every tier (no cluster ingress peer names a node). To the
    // node: after the Admin tier, whose nodes and networks peers may deny it, first of
    // the NetworkPolicy tier (its id is below every policy rule's), so an Admin Pass
    // reaches it too.
    const priority = dir === DIR_INGRESS ? TIER.HOST : TIER.NETWORK_POLICY;
    rules.push({ peers: new Set([IDENTITY.HOST]), traffic: 'any', action: 'allow', priority, ruleId: info.id });
  };
  // Traffic to and from the pod's own node is allowed whatever NetworkPolicies say
  // (Kubernetes: kubelet probes, node-local services); Admin rules may deny the way to it.
  const localNode = (rule: string): PolicyRef => ({ kind: 'tcplane', namespace: null, name: 'allow-local-node', rule });
  if (dir === DIR_INGRESS) addHost({ id: RULE_ID.ALLOW_HOST, description: 'tcplane: allow from the local node (reserved:host)', policy: localNode('ingress') });
  else addHost({ id: RULE_ID.ALLOW_TO_HOST, description: 'tcplane: allow to the local node (reserved:host)', policy: localNode('egress') });
  for (const p of policies) {
    const list = dir === DIR_INGRESS ? p.ingress.map((r) => ({ peers: r.from, ports: r.ports })) : p.egress.map((r) => ({ peers: r.to, ports: r.ports }));
    const add = (info: RuleInfo, peers: PolicyRule['peers'], traffic: RuleTraffic) => {
      described.set(info.id, info);
      rules.push({ peers, traffic, action: 'allow', priority: TIER.NETWORK_POLICY, ruleId: info.id });
    };
    list.forEach((rule, i) => {
      const place = `${dir === DIR_INGRESS ? 'ingress' : 'egress'}[${i}]`;
      const info = infoOf(`NetworkPolicy ${p.namespace}/${p.name} ${place}`, { kind: 'NetworkPolicy', namespace: p.namespace, name: p.name, rule: place });
      const peers = rule.peers ? peersOf(p, rule.peers) : 'any';
      if (peers !== 'any' && peers.size === 0) return; // selects nobody (yet)
      if (!rule.ports) return add(info, peers, 'any');
      for (const port of rule.ports) {
        if (dir === DIR_EGRESS && typeof port.port === 'string') {
          // Each destination's own number for the name: a rule per number, over the peers that give it.
          for (const [number, ids] of classes.namedPort(port.port, port.protocol)) {
            const to = peers === 'any' ? ids : new Set([...ids].filter((id) => peers.has(id)));
            if (to.size > 0) add(info, to, { protocol: PROTOCOL_NUMBER[port.protocol], ports: { from: number, to: number } });
          }
        } else {
          for (const traffic of trafficOf(port, ep)) add(info, peers, traffic);
        }
      }
    });
  }
  return rules;
}

/** Identities any of `peers` selects: label identities with the classes derived from them, and ipBlocks' classes. */
function peerIdentities(p: NetworkPolicy, peers: readonly PolicyPeer[], identities: ReadonlyMap<number, IdentityLabels>, classes: AddressClasses): Set<number> {
  const labelled = new Set<number>();
  for (const [id, labels] of identities) {
    if (peers.some((peer) => !peer.ipBlock && peerMatches(p, peer, labels))) labelled.add(id);
  }
  const out = classes.withDerived(labelled);
  for (const peer of peers) if (peer.ipBlock) for (const id of classes.inBlock(peer.ipBlock)) out.add(id);
  return out;
}

function peerMatches(p: NetworkPolicy, peer: PolicyPeer, l: IdentityLabels): boolean {
  if (peer.namespaceSelector) {
    if (!matchesSelector(peer.namespaceSelector, l.namespaceLabels)) return false;
  } else if (l.namespace !== p.namespace) {
    return false;
  }
  return peer.podSelector ? matchesSelector(peer.podSelector, l.pod) : true;
}

const PROTOCOL_NUMBER = { TCP: PROTO.TCP, UDP: PROTO.UDP, SCTP: PROTO.SCTP } as const;

/**
 * Rule priorities by tier (resolve.ts: lower first): the node's own traffic, then the
 * Admin tier (policy rank × SLOT + rule index), the NetworkPolicies, the Baseline tier,
 * and past its end the default.
 */
const TIER = { HOST: -1, ADMIN: 0, NETWORK_POLICY: 10_000_000, BASELINE: 20_000_000, END: 30_000_000 } as const;
/** Rule slots per policy: more than the 25 rules a direction may have. */
const SLOT = 100;
const KIND_ORDER: Record<ClusterNetworkPolicy['kind'], number> = { ClusterNetworkPolicy: 0, AdminNetworkPolicy: 1, BaselineAdminNetworkPolicy: 2 };

/** Cluster policies in the order they apply within a tier: priority, then kind, then name. */
function clusterOrder(policies: ClusterNetworkPolicy[]): ClusterNetworkPolicy[] {
  return [...policies].sort((a, b) => a.priority - b.priority || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Whether a subject (or a pod peer) selects the pod with these labels in a namespace with these. */
function subjectSelects(s: ClusterSelector, ep: { labels: Record<string, string> }, namespaceLabels: Record<string, string>): boolean {
  if (s.namespaces) return matchesSelector(s.namespaces, namespaceLabels);
  return matchesSelector(s.pods!.namespaceSelector, namespaceLabels) && matchesSelector(s.pods!.podSelector, ep.labels);
}

/**
 * Identities a cluster rule's peer selects: pods by their namespace's and their own
 * labels (with their classes), the classes of its networks, or those of the nodes whose
 * labels its nodes selector selects; this node's addresses (reserved:host) where its
 * labels or an address of it are selected.
 */
function clusterPeerIdentities(
  peer: ClusterPeer,
  identities: ReadonlyMap<number, IdentityLabels>,
  classes: AddressClasses,
  input: Pick<DesiredInput, 'nodes' | 'hostAddresses' | 'hostLabels'>,
): Set<number> {
  if (peer.nodes) {
    const out = classes.ofNodes(new Set(input.nodes.filter((n) => matchesSelector(peer.nodes!, n.labels ?? {})).map((n) => n.name)));
    if (input.hostLabels && matchesSelector(peer.nodes, input.hostLabels)) out.add(IDENTITY.HOST);
    return out;
  }
  if (peer.networks) {
    const out = new Set<number>();
    for (const cidr of peer.networks) for (const id of classes.inBlock({ cidr, except: [] })) out.add(id);
    if (input.hostAddresses.some((a) => peer.networks!.some((c) => prefixHasAddress(prefixOf(c), a)))) out.add(IDENTITY.HOST);
    return out;
  }
  const labelled = new Set<number>();
  for (const [id, l] of identities) if (subjectSelects(peer, { labels: l.pod }, l.namespaceLabels)) labelled.add(id);
  return classes.withDerived(labelled);
}

const RULE_ACTION: Record<ClusterAction, RuleAction> = { Accept: 'allow', Deny: 'deny', Pass: 'pass' };

/**
 * The rule model of the cluster policies whose subject is ep, in direction dir, in tier
 * order (see the file comment); the Baseline tier only where no NetworkPolicy isolates ep
 * that way (`isolated`). Every rule's description goes into `described`.
 */
function clusterRules(
  ep: LocalEndpoint,
  dir: Direction,
  policies: readonly ClusterNetworkPolicy[],
  isolated: boolean,
  { clusterPeers, infoOf, classes }: RuleContext,
  described: Map<number, RuleInfo>,
): PolicyRule[] {
  const rules: PolicyRule[] = [];
  const rank = { Admin: 0, Baseline: 0 };
  for (const p of policies) {
    if (p.tier === 'Baseline' && isolated) continue;
    const base = (p.tier === 'Admin' ? TIER.ADMIN : TIER.BASELINE) + rank[p.tier]++ * SLOT;
    const passTo = p.tier === 'Admin' ? TIER.NETWORK_POLICY : TIER.END;
    const list: ClusterRule[] = dir === DIR_INGRESS ? p.ingress : p.egress;
    list.forEach((r, i) => {
      const way = dir === DIR_INGRESS ? 'ingress' : 'egress';
      const info = infoOf(`${p.kind} ${p.name} ${way}[${i}]${r.name ? ` ${r.name}` : ''}`, { kind: p.kind, namespace: null, name: p.name, rule: r.name ?? `${way}[${i}]` });
      described.set(info.id, info);
      const action = RULE_ACTION[r.action];
      const peers = new Set<number>();
      for (const peer of r.peers) for (const id of clusterPeers(peer)) peers.add(id);
      const add = (to: ReadonlySet<number>, traffic: RuleTraffic) => {
        if (to.size === 0) return; // selects nobody (yet)
        rules.push({ peers: to, traffic, action, priority: base + i, ruleId: info.id, ...(action === 'pass' ? { passTo } : {}) });
      };
      if (!r.ports) return add(peers, 'any');
      for (const port of r.ports) for (const [to, traffic] of clusterTraffic(port, dir, ep, peers, classes)) add(to, traffic);
    });
  }
  return rules;
}

/**
 * What one port of a cluster rule matches, with the peers it holds for: a protocol's
 * ports as given, for every peer; a named port on the destination, whatever its
 * protocol: ep's own declared ports for ingress, each peer's numbers for egress.
 */
function clusterTraffic(port: ClusterPort, dir: Direction, ep: LocalEndpoint, peers: ReadonlySet<number>, classes: AddressClasses): [ReadonlySet<number>, RuleTraffic][] {
  if (!('name' in port)) {
    const protocol = PROTOCOL_NUMBER[port.protocol];
    if (port.port === undefined) return [[peers, { protocol, ports: 'any' }]];
    return [[peers, { protocol, ports: { from: port.port, to: port.endPort ?? port.port } }]];
  }
  if (dir === DIR_INGRESS) {
    return ep.ports.filter((d) => d.name === port.name).map((d) => [peers, { protocol: PROTOCOL_NUMBER[d.protocol], ports: { from: d.port, to: d.port } }]);
  }
  const out: [ReadonlySet<number>, RuleTraffic][] = [];
  for (const protocol of ['TCP', 'UDP', 'SCTP'] as const) {
    for (const [number, ids] of classes.namedPort(port.name, protocol)) {
      const to = new Set([...ids].filter((id) => peers.has(id)));
      out.push([to, { protocol: PROTOCOL_NUMBER[protocol], ports: { from: number, to: number } }]);
    }
  }
  return out;
}

/**
 * The traffic one port of a rule protecting ep matches; a named port (of an ingress
 * rule: ep is the destination) is the number ep declares under that name and protocol,
 * and matches nothing where it declares none.
 */
function trafficOf(port: PolicyPort, ep: LocalEndpoint): RuleTraffic[] {
  const protocol = PROTOCOL_NUMBER[port.protocol];
  if (port.port === undefined) return [{ protocol, ports: 'any' }];
  if (typeof port.port === 'string') {
    const name = port.port;
    const declared = ep.ports.filter((d) => d.name === name && d.protocol === port.protocol);
    return declared.map((d) => ({ protocol, ports: { from: d.port, to: d.port } }));
  }
  return [{ protocol, ports: { from: port.port, to: port.endPort ?? port.port } }];
}
