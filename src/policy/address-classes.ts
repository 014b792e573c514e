/**
 * Identities by address, where labels do not say enough. A label identity stands for
 * every pod with those labels, but these policy features look at one address:
 *   - an ipBlock (a cluster policy's networks alike) matches the addresses it covers, a
 *     pod's too, and not the other pods that share its labels;
 *   - a named port in an egress rule is resolved on the destination pod, and two pods
 *     with one label set may declare that name as different numbers;
 *   - a cluster policy's nodes peer selects nodes by their labels: each node's addresses
 *     then get a class of their own (the node is part of the class).
 * So the addresses these features tell apart get identities of their own: a class is
 * (base identity, the longest policy prefix that covers the address, the numbers its pod
 * gives the port names egress rules use). The base is the pod's label identity, or
 * reserved:remote-node for another node's address, or, for an address no pod or node
 * has, reserved:unmanaged inside a pod range and reserved:world outside. An address whose
 * class adds nothing to its base keeps the base; the own node's addresses always keep
 * reserved:host (its traffic is always allowed).
 *
 * Addresses of no pod or node are classed by prefix, in the LPM map (tp_ipcidr_v1): one
 * entry per policy prefix and pod range, each with the class of its addresses. An
 * address's longest match there lies inside a policy prefix exactly when the address
 * does (every policy prefix has its own entry), so the prefix a class keeps is enough to
 * tell which ipBlocks match.
 *
 * Class identities are node-local: numbered here (never in the store), from
 * IDENTITY.LOCAL up with flags the datapath reads (IN_PODS: an address in a pod range,
 * NODE: another node's), the number a hash of the class probed past collisions in sorted
 * order, so the same input gives the same numbers on every run (nodes see the cluster
 * without themselves, so two nodes may number a class apart: harmless, a class never
 * leaves its node). This node's own pod range is not in the CIDR map (as before
 * classes): an address in it that no pod has is the world's.
 */
import { createHash } from 'node:crypto';
import { IDENTITY } from '../datapath/constants.js';
import { hostPrefix, prefixContains, prefixOf, prefixString, truncate, type Prefix } from './prefix.js';
import type { DeclaredPort, IpBlock, PolicyDocument } from './types.js';

export interface ClassedPod {
  ips: readonly string[];
  identity: number;
  ports?: readonly DeclaredPort[];
}

export interface ClassedNode {
  /** Needed (with labels) only where cluster policies select nodes. */
  name?: string;
  labels?: Readonly<Record<string, string>>;
  addresses: readonly string[];
  podCIDRs: readonly string[];
}

export interface AddressClassInput {
  /** Every policy: their ipBlocks and networks are prefixes, their egress rules' port names are told apart. */
  policies: readonly PolicyDocument[];
  /** Every pod of the cluster. */
  pods: readonly ClassedPod[];
  /** The other nodes of the cluster (their addresses and pod ranges). */
  nodes: readonly ClassedNode[];
}

interface AddressClass {
  identity: number;
  base: number;
  /** The longest policy prefix over the class's addresses. */
  prefix?: Prefix;
  /** `name/PROTOCOL` → the port number its pods declare under it (names egress rules use). */
  ports: ReadonlyMap<string, number>;
  /** The node whose addresses these are, where cluster policies select nodes. */
  node?: string;
}

/** What compile needs of the classes. */
export interface AddressClasses {
  /** The identity of a pod's address (its class's, or its label identity). */
  podAddress(ip: string, identity: number): number;
  /** The identity of another node's address. */
  nodeAddress(ip: string): number;
  /** The LPM entries: every pod range and policy prefix, with the identity of its addresses. */
  prefixes: readonly { cidr: string; identity: number }[];
  /** The classes derived from these label identities, and those of them some address still holds. */
  withDerived(identities: ReadonlySet<number>): Set<number>;
  /** The identities of the addresses an ipBlock matches. */
  inBlock(block: IpBlock): Set<number>;
  /** The identities of the addresses of these nodes (classes of their own where cluster policies select nodes). */
  ofNodes(names: ReadonlySet<string>): Set<number>;
  /** For a port name (and protocol) egress rules use: each number pods give it → the identities that do. */
  namedPort(name: string, protocol: DeclaredPort['protocol']): ReadonlyMap<number, ReadonlySet<number>>;
}

const portKey = (name: string, protocol: string) => `${name}/${protocol}`;

/** The classes of a cluster's addresses under its policies. */
export function addressClasses(input: AddressClassInput): AddressClasses {
  const policyPrefixes = new Map<string, Prefix>();
  const egressNames = new Set<string>();
  // Cluster policies with nodes peers tell each node's addresses apart: a class per node.
  let byNode = false;
  for (const np of input.policies) {
    if (np.kind !== 'NetworkPolicy') {
      if (np.egress.some((r) => r.peers.some((peer) => peer.nodes))) byNode = true;
      // A cluster policy's networks are prefixes as ipBlocks are; its egress port names have no protocol.
      for (const r of np.egress) {
        for (const peer of r.peers) for (const c of peer.networks ?? []) policyPrefixes.set(c, prefixOf(c));
        for (const port of r.ports ?? []) if ('name' in port) for (const protocol of ['TCP', 'UDP', 'SCTP']) egressNames.add(portKey(port.name, protocol));
      }
      continue;
    }
    for (const r of [...np.ingress.map((x) => x.from), ...np.egress.map((x) => x.to)]) {
      for (const peer of r ?? []) {
        if (!peer.ipBlock) continue;
        for (const c of [peer.ipBlock.cidr, ...peer.ipBlock.except]) policyPrefixes.set(c, prefixOf(c));
      }
    }
    for (const r of np.egress) for (const p of r.ports ?? []) if (typeof p.port === 'string') egressNames.add(portKey(p.port, p.protocol));
  }
  const prefixList = [...policyPrefixes.values()];
  // Policy prefixes by family and length, longest first: the longest one containing a
  // prefix is found with one lookup per length in use, not a scan of them all.
  const byLength = new Map<Prefix['family'], { len: number; at: Map<bigint, Prefix> }[]>();
  for (const q of prefixList) {
    const lengths = byLength.get(q.family) ?? byLength.set(q.family, []).get(q.family)!;
    let row = lengths.find((r) => r.len === q.len);
    if (!row) lengths.push((row = { len: q.len, at: new Map() }));
    row.at.set(q.bits, q);
  }
  for (const lengths of byLength.values()) lengths.sort((a, b) => b.len - a.len);
  /** The longest policy prefix containing p. */
  const longest = (p: Prefix): Prefix | undefined => {
    for (const row of byLength.get(p.family) ?? []) {
      if (row.len > p.len) continue;
      const q = row.at.get(truncate(p, row.len));
      if (q) return q;
    }
    return undefined;
  };

  // Every class, by a canonical key, numbered once all are known.
  const pending = new Map<string, Omit<AddressClass, 'identity'> & { flags: number }>();
  const classKey = (base: number, prefix: Prefix | undefined, ports: ReadonlyMap<string, number>, node?: string) =>
    JSON.stringify([base, prefix ? prefixString(prefix) : null, [...ports].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), ...(node === undefined ? [] : [node])]);
  const want = (base: number, flags: number, prefix: Prefix | undefined, ports: ReadonlyMap<string, number> = new Map(), node?: string): string | undefined => {
    if (!prefix && ports.size === 0 && node === undefined) return undefined;
    const key = classKey(base, prefix, ports, node);
    if (!pending.has(key)) pending.set(key, { base, flags, prefix, ports, node });
    return key;
  };

  const podKeys = new Map<string, string>(); // `${ip} ${identity}` → class key
  const bare = new Set<number>(); // label identities some address still holds as they are
  for (const pod of input.pods) {
    const ports = new Map<string, number>();
    for (const d of pod.ports ?? []) if (d.name && egressNames.has(portKey(d.name, d.protocol))) ports.set(portKey(d.name, d.protocol), d.port);
    for (const ip of pod.ips) {
      const key = want(pod.identity, IDENTITY.LOCAL_IN_PODS, longest(hostPrefix(ip)), ports);
      if (key) podKeys.set(`${ip} ${pod.identity}`, key);
      else bare.add(pod.identity);
    }
  }
  const nodeKeys = new Map<string, string>();
  for (const n of input.nodes) {
    for (const ip of n.addresses) {
      const key = want(IDENTITY.REMOTE_NODE, IDENTITY.LOCAL_NODE, longest(hostPrefix(ip)), new Map(), byNode ? (n.name ?? '') : undefined);
      if (key) nodeKeys.set(ip, key);
    }
  }
  const ranges = input.nodes.flatMap((n) => n.podCIDRs.map(prefixOf));
  const lpm: { prefix: Prefix; key?: string; identity?: number }[] = [];
  const lpmSeen = new Set<string>();
  for (const p of [...ranges, ...prefixList]) {
    const text = prefixString(p);
    if (lpmSeen.has(text)) continue;
    lpmSeen.add(text);
    const inPods = ranges.some((r) => prefixContains(r, p));
    const key = want(inPods ? IDENTITY.UNMANAGED : IDENTITY.WORLD, inPods ? IDENTITY.LOCAL_IN_PODS : 0, longest(p));
    lpm.push(key ? { prefix: p, key } : { prefix: p, identity: inPods ? IDENTITY.UNMANAGED : IDENTITY.WORLD });
  }

  const classes = new Map<string, AddressClass>();
  const taken = new Set<number>();
  for (const key of [...pending.keys()].sort()) {
    const c = pending.get(key)!;
    let n = createHash('sha256').update(key).digest().readUInt32LE(0) & IDENTITY.LOCAL_NUMBER_MASK;
    const number = () => (IDENTITY.LOCAL | c.flags | n) >>> 0;
    while (taken.has(number())) n = (n + 1) & IDENTITY.LOCAL_NUMBER_MASK;
    taken.add(number());
    classes.set(key, { identity: number(), base: c.base, prefix: c.prefix, ports: c.ports, node: c.node });
  }
  const all = [...classes.values()];
  const byBase = new Map<number, number[]>();
  for (const c of all) (byBase.get(c.base) ?? byBase.set(c.base, []).get(c.base)!).push(c.identity);
  const named = new Map<string, Map<number, Set<number>>>();

  return {
    podAddress: (ip, identity) => {
      const key = podKeys.get(`${ip} ${identity}`);
      return key ? classes.get(key)!.identity : identity;
    },
    nodeAddress: (ip) => {
      const key = nodeKeys.get(ip);
      return key ? classes.get(key)!.identity : IDENTITY.REMOTE_NODE;
    },
    prefixes: lpm.map((e) => ({ cidr: prefixString(e.prefix), identity: e.key ? classes.get(e.key)!.identity : e.identity! })),
    withDerived: (ids) => {
      const out = new Set<number>();
      for (const id of ids) {
        const derived = byBase.get(id);
        // A label identity every address of which has a class of its own is held by none: no entries for it.
        if (!derived || bare.has(id)) out.add(id);
        for (const d of derived ?? []) out.add(d);
      }
      return out;
    },
    inBlock: (block) => {
      const cidr = prefixOf(block.cidr);
      const except = block.except.map(prefixOf);
      const out = new Set<number>();
      for (const c of all) {
        if (c.prefix && prefixContains(cidr, c.prefix) && !except.some((e) => prefixContains(e, c.prefix!))) out.add(c.identity);
      }
      return out;
    },
    ofNodes: (names) => {
      const out = new Set<number>();
      for (const c of all) if (c.node !== undefined && names.has(c.node)) out.add(c.identity);
      return out;
    },
    namedPort: (name, protocol) => {
      const key = portKey(name, protocol);
      let m = named.get(key);
      if (!m) {
        m = new Map();
        for (const c of all) {
          const port = c.ports.get(key);
          if (port !== undefined) (m.get(port) ?? m.set(port, new Set()).get(port)!).add(c.identity);
        }
        named.set(key, m);
      }
      return m;
    },
  };
}
