/**
 * An independent model of what tcplane's datapath must decide, for checking the real
 * object against. Written from the rules, not from the agent's code: it never calls the
 * compiler, never reads a map, and knows nothing of identities, LPM prefixes or policy
 * keys. It reasons on pods, labels and policies the way the Kubernetes documentation
 * states NetworkPolicy (networking.k8s.io/v1), plus the datapath rules the C headers
 * document:
 *
 *   - a packet from a pod's veth must carry that pod's address as its source
 *     (drop_invalid_source); a packet to a pod's veth must carry that pod's address as
 *     its destination (drop_unknown_dest); "that pod" means a pod of this node whose
 *     veth is the interface the packet is on
 *   - ICMPv6 router/neighbour discovery passes before anything else (pass_ndp), when
 *     it is not fragmented (a fragmented one is ICMPv6 like any other: RFC 6980)
 *   - an ICMP error (not a later fragment) that quotes a packet of a connection the pod
 *     holds (either way, not expired, its own address on its side; TCP, UDP or an echo;
 *     no later fragment, nor an IPv6 fragment, whose quote begins with its Fragment header)
 *     passes as related (pass_related), before conntrack and policy, and changes no
 *     connection; any other ICMP error is an ICMP packet like any other
 *   - fragments: only the first fragment of a datagram carries its ports; the datapath
 *     remembers them per (family, protocol, IP identification, source, destination),
 *     and a later fragment is judged with them like the first; a later fragment whose
 *     first was not seen drops (drop_fragment). A first fragment is remembered only
 *     when it passes: the later fragments of a refused datagram drop as drop_fragment
 *   - conntrack, per pod and per direction: a packet of a connection the pod already
 *     allowed passes (pass_established), a reply to one passes the other way
 *     (pass_reply), as long as the policies still allow the packet that opened it: when
 *     they change and no longer do, its next packet either way drops
 *     (drop_policy_default); ICMP echo is tracked by its identifier
 *   - each direction alike: a pod no NetworkPolicy of its namespace selects with that
 *     direction in policyTypes allows everything that way (pass_default); a selected
 *     pod allows what any selecting policy's rule of that direction allows
 *     (pass_policy) and drops the rest (drop_policy_default); traffic to and from its own
 *     node (reserved:host) is always allowed, as Kubernetes says
 *   - a rule's peer is a pod: namespaceSelector over its namespace's labels (else the
 *     policy's namespace), podSelector over its labels, both ANDed; or an ipBlock: any
 *     address of its family in its cidr and in none of its except, whoever has it (a
 *     pod, a node, nobody); several peers ORed; selectors are matchLabels ANDed with
 *     matchExpressions (In, NotIn, Exists, DoesNotExist; NotIn and DoesNotExist hold for
 *     a missing key)
 *   - a rule's port: the protocol, and the port, the range port…endPort, or a name the
 *     destination pod declares for that protocol (a pod that declares none is not
 *     matched); missing ports: all traffic
 *   - cluster policies (ClusterNetworkPolicy, AdminNetworkPolicy,
 *     BaselineAdminNetworkPolicy), for the pods their subject selects (namespaces by
 *     their labels, or pods by their namespace's and their own), as network-policy-api
 *     says: the Admin tier first — policies by priority, then ClusterNetworkPolicy before
 *     AdminNetworkPolicy, then by name; rules in order; the first rule that matches
 *     Accepts (pass_policy), Denies (drop_policy) or Passes (the Admin tier is done) —
 *     then the NetworkPolicies if one isolates the pod that way (they decide the rest),
 *     else the Baseline tier the same way (a Pass ends it), else the default, allow
 *     (pass_default). A pod with any such policy in a direction takes everything from its
 *     own node through a rule (pass_policy), and sends to it unless an Admin rule
 *     decides first (the NetworkPolicy and Baseline tiers cannot cut it). A cluster rule's peer: pods as a subject selects
 *     them, networks (any address in a CIDR of the list, whoever has it), or nodes (the
 *     addresses of the nodes whose labels the selector selects); a named port is the
 *     destination pod's port of that name, any protocol
 *
 * The bottom of the file bridges a model cluster to the agent's compiler input, for the
 * tests; the model itself does not use it.
 */
import type { DesiredInput, LocalEndpoint } from '../../src/policy/compile.js';
import type { IdentityLabels } from '../../src/identity/labels.js';
import type { ClusterNetworkPolicy, ClusterPeer, ClusterPort, ClusterRule, ClusterSelector, LabelSelector, NetworkPolicy, PolicyDocument, PolicyPeer, PolicyPort } from '../../src/policy/types.js';

export type Labels = Record<string, string>;

export interface ModelNamespace {
  name: string;
  /** Every label, `kubernetes.io/metadata.name` included if the test wants it. */
  labels: Labels;
}

export interface ModelPod {
  namespace: string;
  name: string;
  labels: Labels;
  ips: string[];
  node: string;
  /** Local pods: the host-side veth the pod's packets are seen on (default 1, loopback, as in BPF_PROG_TEST_RUN). */
  ifindex?: number;
  /** The ports it declares, by name (named ports in rules resolve against them). */
  ports?: { name?: string; port: number; protocol: 'TCP' | 'UDP' | 'SCTP' }[];
}

export interface ModelNode {
  name: string;
  addresses: string[];
  podCIDRs: string[];
  /** What cluster policies' nodes peers select by. */
  labels?: Labels;
}

export interface ModelCluster {
  /** The node whose datapath is modelled. */
  localNode: string;
  nodes: ModelNode[];
  namespaces: ModelNamespace[];
  pods: ModelPod[];
  /** NetworkPolicies and cluster policies. */
  policies: PolicyDocument[];
}

export type ModelProtocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6';

export interface ModelPacket {
  src: string;
  dst: string;
  protocol: ModelProtocol;
  /** TCP, UDP and SCTP. */
  sport?: number;
  dport?: number;
  /** TCP flag byte (FIN 0x01, RST 0x04 shorten the connection's lifetime). */
  tcpFlags?: number;
  /** ICMP and ICMPv6. */
  icmpType?: number;
  icmpId?: number;
  /**
   * A fragment of a datagram (absent: a whole packet). IPv4 identification is 16 bits,
   * IPv6's 32. Offset 0 with more: false is a whole packet too (an IPv6 atomic fragment).
   * A later fragment (offset > 0) carries no L4 header: its ports, ICMP fields and TCP
   * flags are not part of it (see `fragmentOf`).
   */
  fragment?: { id: number; offset: number; more: boolean };
  /**
   * ICMP and ICMPv6 errors (unreachable, too big, time exceeded, parameter problem):
   * the packet the error answers, quoted whole behind the ICMP header.
   */
  quoted?: ModelPacket;
}

/** ICMP error types by protocol: they quote a packet. */
const ERROR_TYPES: Record<ModelProtocol, number[]> = { TCP: [], UDP: [], SCTP: [], ICMP: [3, 11, 12], ICMPv6: [1, 2, 3, 4] };

/** The ICMP error a host sends back to the sender of p (type: unreachable by default). */
export function icmpErrorFor(p: ModelPacket, from: string, type?: number): ModelPacket {
  const v6 = p.src.includes(':');
  return { src: from, dst: p.src, protocol: v6 ? 'ICMPv6' : 'ICMP', icmpType: type ?? (v6 ? 1 : 3), quoted: p };
}

type FragmentKind = 'none' | 'first' | 'later';
function fragmentKind(p: ModelPacket): FragmentKind {
  const f = p.fragment;
  if (!f || (f.offset === 0 && !f.more)) return 'none';
  return f.offset === 0 ? 'first' : 'later';
}

/** Packet p sent as one fragment; a later fragment keeps only what its IP header says. */
export function fragmentOf(p: ModelPacket, id: number, offset: number, more: boolean): ModelPacket {
  const fragment = { id, offset, more };
  return offset === 0 ? { ...p, fragment } : { src: p.src, dst: p.dst, protocol: p.protocol, fragment };
}

/** The fragments of one datagram: first, middle and last. */
export function fragmentsOf(p: ModelPacket, id: number): ModelPacket[] {
  return [fragmentOf(p, id, 0, true), fragmentOf(p, id, 3, true), fragmentOf(p, id, 6, false)];
}

/** What the datapath decides a packet by, once its ports are known. */
interface Seen {
  src: string;
  dst: string;
  protocol: ModelProtocol;
  sport: number;
  dport: number;
  tcpFlags: number;
}

export type Hook = 'to_pod' | 'from_pod';

export type PassReason = 'pass_established' | 'pass_reply' | 'pass_policy' | 'pass_default' | 'pass_arp' | 'pass_ndp' | 'pass_related';
export type DropReason =
  | 'drop_policy'
  | 'drop_policy_default'
  | 'drop_truncated'
  | 'drop_unknown_l3'
  | 'drop_invalid_ip'
  | 'drop_fragment'
  | 'drop_invalid_source'
  | 'drop_unknown_dest'
  | 'drop_ipv6_ext';
export type ReasonLabel = PassReason | DropReason;

export interface Outcome {
  hook: Hook;
  pass: boolean;
  reason: ReasonLabel;
}

/** Conntrack lifetimes in ns (defaults: bpf/lib/config.h, Cilium's). */
export interface Lifetimes {
  tcpSyn: bigint;
  tcp: bigint;
  tcpClosing: bigint;
  other: bigint;
  refresh: bigint;
}

const SECOND = 1_000_000_000n;
export const DEFAULT_LIFETIMES: Lifetimes = {
  tcpSyn: 60n * SECOND,
  tcp: 21600n * SECOND,
  tcpClosing: 10n * SECOND,
  other: 60n * SECOND,
  refresh: 1n * SECOND,
};

const ECHO_TYPES: Record<ModelProtocol, number[]> = { TCP: [], UDP: [], SCTP: [], ICMP: [8, 0], ICMPv6: [128, 129] };
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

/** Canonical text of an address, so `fd00::1` and `fd00:0::1` compare equal. */
export function canonicalIp(ip: string): string {
  return ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

/** An address as a string of 32 or 128 bits. */
function addressBits(ip: string): string {
  if (!ip.includes(':')) return ip.split('.').map((o) => Number(o).toString(2).padStart(8, '0')).join('');
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const groups = (x: string | undefined) => (x ? x.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.map((g) => parseInt(g, 16).toString(2).padStart(16, '0')).join('');
}

/** Whether ip lies in cidr (never across families). */
function inCidr(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split('/') as [string, string];
  const a = addressBits(ip);
  const n = addressBits(net);
  return a.length === n.length && a.slice(0, Number(len)) === n.slice(0, Number(len));
}

function selects(sel: LabelSelector, labels: Labels): boolean {
  const has = (k: string) => Object.hasOwn(labels, k);
  if (!Object.entries(sel.matchLabels).every(([k, v]) => has(k) && labels[k] === v)) return false;
  return sel.matchExpressions.every((e) => {
    switch (e.operator) {
      case 'In':
        return has(e.key) && e.values.includes(labels[e.key]!);
      case 'NotIn':
        return !(has(e.key) && e.values.includes(labels[e.key]!));
      case 'Exists':
        return has(e.key);
      case 'DoesNotExist':
        return !has(e.key);
    }
  });
}

/** A rule's port against a packet to `destination` (the pod a named port is looked up on). */
function portMatches(pp: PolicyPort, p: Seen, destination: ModelPod | undefined): boolean {
  if (pp.protocol !== p.protocol) return false;
  if (pp.port === undefined) return true;
  if (typeof pp.port === 'number') return p.dport >= pp.port && p.dport <= (pp.endPort ?? pp.port);
  const name = pp.port;
  return (destination?.ports ?? []).some((d) => d.name === name && d.protocol === pp.protocol && d.port === p.dport);
}

/** The ports a packet is tracked and matched by: TCP/UDP/SCTP ports, the echo identifier, else 0. */
function portsOf(p: ModelPacket): [number, number] {
  if (fragmentKind(p) === 'later') throw new Error('a later fragment has no ports of its own');
  if (p.protocol === 'TCP' || p.protocol === 'UDP' || p.protocol === 'SCTP') return [p.sport ?? 0, p.dport ?? 0];
  if (ECHO_TYPES[p.protocol].includes(p.icmpType ?? -1)) return [p.icmpId ?? 0, p.icmpId ?? 0];
  return [0, 0];
}

/** The packet going the other way: addresses and ports swapped, echo request ↔ reply. */
export function reply(p: ModelPacket): ModelPacket {
  const r: ModelPacket = { ...p, src: p.dst, dst: p.src, sport: p.dport, dport: p.sport };
  if (p.protocol === 'TCP') r.tcpFlags = 0x12; // SYN-ACK
  const [req, rep] = ECHO_TYPES[p.protocol];
  if (p.icmpType === req) r.icmpType = rep;
  else if (p.icmpType === rep) r.icmpType = req;
  return r;
}

interface CtEntry {
  flags: number;
  expires: bigint;
  /** The hook and packet that opened the connection: what it is judged by again. */
  opened: Hook;
  first: Seen;
}
const CT_SEEN_REPLY = 1;
const CT_CLOSING = 2;

export class PolicyModel {
  /** The clock conntrack expiry is measured on (ns); tests advance it, or set it from CLOCK_MONOTONIC. */
  now = 0n;
  private readonly ct = new Map<string, CtEntry>();
  /** Ports of fragmented datagrams, from their first fragments. */
  private readonly fragments = new Map<string, [sport: number, dport: number]>();
  private cluster!: ModelCluster;
  private byIp = new Map<string, ModelPod>();
  private nsLabels = new Map<string, Labels>();
  private hostAddrs = new Set<string>();

  constructor(
    cluster: ModelCluster,
    readonly lifetimes: Lifetimes = DEFAULT_LIFETIMES,
  ) {
    this.setCluster(cluster);
  }

  /** New pods, labels or policies; conntrack is kept, as in the datapath. */
  setCluster(cluster: ModelCluster): void {
    this.cluster = cluster;
    this.byIp = new Map(cluster.pods.flatMap((p) => p.ips.map((ip) => [canonicalIp(ip), p] as const)));
    this.nsLabels = new Map(cluster.namespaces.map((n) => [n.name, n.labels]));
    const local = cluster.nodes.find((n) => n.name === cluster.localNode);
    this.hostAddrs = new Set((local?.addresses ?? []).map(canonicalIp));
  }

  clearConntrack(): void {
    this.ct.clear();
  }

  clearFragments(): void {
    this.fragments.clear();
  }

  /** The pod with this address, if any (any node). */
  podOf(ip: string): ModelPod | undefined {
    return this.byIp.get(canonicalIp(ip));
  }

  /** A pod of the local node with this address, seen on interface ifindex. */
  private localPod(ip: string, ifindex: number): ModelPod | undefined {
    const pod = this.podOf(ip);
    return pod && pod.node === this.cluster.localNode && (pod.ifindex ?? 1) === ifindex ? pod : undefined;
  }

  /**
   * The veth hooks a packet crosses on this node, in order: the sending pod's (if the
   * packet comes from a local pod's veth) then the receiving pod's (if it goes to a local
   * pod, or arrives from the network and must be checked there).
   */
  route(p: ModelPacket, via: 'pod' | 'network'): Hook[] {
    if (via === 'network') return ['to_pod'];
    const dst = this.podOf(p.dst);
    return dst && dst.node === this.cluster.localNode ? ['from_pod', 'to_pod'] : ['from_pod'];
  }

  /** Every hook of `route`, stopping at the first drop. */
  deliver(p: ModelPacket, via: 'pod' | 'network'): Outcome[] {
    const out: Outcome[] = [];
    for (const hook of this.route(p, via)) {
      const o = this.hook(hook, p);
      out.push(o);
      if (!o.pass) break;
    }
    return out;
  }

  /** What the program on `hook` of interface `ifindex` does with p (and what it records). */
  hook(hook: Hook, p: ModelPacket, ifindex = 1): Outcome {
    const done = (reason: ReasonLabel): Outcome => ({ hook, pass: reason.startsWith('pass_'), reason });
    const frag = fragmentKind(p);
    if (frag === 'none' && p.protocol === 'ICMPv6' && (p.icmpType ?? 0) >= 133 && (p.icmpType ?? 0) <= 137) return done('pass_ndp');

    const pod = this.localPod(hook === 'to_pod' ? p.dst : p.src, ifindex);
    if (!pod) return done(hook === 'to_pod' ? 'drop_unknown_dest' : 'drop_invalid_source');

    let ports: [number, number];
    if (frag === 'later') {
      const known = this.fragments.get(this.fragmentKey(p));
      if (!known) return done('drop_fragment');
      ports = known;
    } else {
      ports = portsOf(p);
    }
    const decided = (reason: ReasonLabel): Outcome => {
      if (frag === 'first' && reason.startsWith('pass_')) this.fragments.set(this.fragmentKey(p), ports);
      return done(reason);
    };
    // A later fragment has no TCP header: no flags.
    const seen: Seen = { src: p.src, dst: p.dst, protocol: p.protocol, sport: ports[0], dport: ports[1], tcpFlags: frag === 'later' ? 0 : (p.tcpFlags ?? 0) };

    if (frag !== 'later' && p.quoted && ERROR_TYPES[p.protocol].includes(p.icmpType ?? -1) && this.related(pod, hook, p.quoted)) return decided('pass_related');
    const ct = this.conntrack(pod, hook, seen);
    if (ct) return decided(ct);

    const type = hook === 'to_pod' ? 'Ingress' : 'Egress';
    const reason = this.policyReason(pod, type, seen);
    if (reason.startsWith('pass_')) this.track(pod, hook, seen);
    return decided(reason);
  }

  private fragmentKey(p: ModelPacket): string {
    return JSON.stringify([p.protocol, p.fragment!.id, canonicalIp(p.src), canonicalIp(p.dst)]);
  }

  // ---- NetworkPolicy ----

  /** Selected by a policy of its namespace that has Ingress in policyTypes. */
  isolatedForIngress(pod: ModelPod): boolean {
    return this.selecting(pod, 'Ingress').length > 0;
  }

  /**
   * Whether a new connection from pod `from` reaches pod `to` (by to's address of `from`'s
   * first address's family) on this protocol and port, as the policies say: from's
   * egress allows it and to's ingress does; a pod always reaches itself. For end-to-end
   * reachability matrices (conntrack and hooks aside).
   */
  reachable(from: ModelPod, to: ModelPod, protocol: 'TCP' | 'UDP', dport: number, family: 4 | 6 = 4): boolean {
    const v6 = family === 6;
    const src = from.ips.find((ip) => ip.includes(':') === v6);
    const dst = to.ips.find((ip) => ip.includes(':') === v6);
    if (!src || !dst) return false;
    if (from === to) return true;
    const p: Seen = { src, dst, protocol, sport: 40000, dport, tcpFlags: 0x02 };
    const way = (pod: ModelPod, type: 'Ingress' | 'Egress') => this.policyReason(pod, type, p).startsWith('pass_');
    return way(from, 'Egress') && way(to, 'Ingress');
  }

  private selecting(pod: ModelPod, type: 'Ingress' | 'Egress'): NetworkPolicy[] {
    return this.cluster.policies.filter(
      (np): np is NetworkPolicy => np.kind === 'NetworkPolicy' && np.namespace === pod.namespace && np.policyTypes.includes(type) && selects(np.podSelector, pod.labels),
    );
  }

  /** What decides a new connection of pod in direction `type`: the tiers, in order (see the file comment). */
  private policyReason(pod: ModelPod, type: 'Ingress' | 'Egress', p: Seen): ReasonLabel {
    const nps = this.selecting(pod, type);
    const cluster = this.clusterSelecting(pod, type);
    if (nps.length === 0 && cluster.length === 0) return 'pass_default';
    // From its own node a pod takes everything; to its own node it goes unless the Admin tier denies it.
    const host = this.hostAddrs.has(canonicalIp(type === 'Ingress' ? p.src : p.dst));
    if (host && type === 'Ingress') return 'pass_policy';
    const tier = (which: 'Admin' | 'Baseline'): ReasonLabel | undefined => {
      for (const cp of cluster.filter((c) => c.tier === which)) {
        for (const r of type === 'Ingress' ? cp.ingress : cp.egress) {
          if (!this.clusterRuleMatches(r, pod, type, p)) continue;
          if (r.action === 'Pass') return undefined; // the rest of the tier is skipped
          return r.action === 'Accept' ? 'pass_policy' : 'drop_policy';
        }
      }
      return undefined;
    };
    const admin = tier('Admin');
    if (admin) return admin;
    if (host) return 'pass_policy';
    if (nps.length > 0) return this.allowed(pod, type, p) ? 'pass_policy' : 'drop_policy_default';
    return tier('Baseline') ?? 'pass_default';
  }

  /** Cluster policies whose subject is pod and which have rules that way, in the order they apply. */
  private clusterSelecting(pod: ModelPod, type: 'Ingress' | 'Egress'): ClusterNetworkPolicy[] {
    const order = { ClusterNetworkPolicy: 0, AdminNetworkPolicy: 1, BaselineAdminNetworkPolicy: 2 };
    return this.cluster.policies
      .filter((c): c is ClusterNetworkPolicy => c.kind !== 'NetworkPolicy')
      .filter((c) => this.subjectHas(c.subject, pod) && (type === 'Ingress' ? c.ingress : c.egress).length > 0)
      .sort((a, b) => a.priority - b.priority || order[a.kind] - order[b.kind] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private subjectHas(s: ClusterSelector, pod: ModelPod): boolean {
    const ns = this.nsLabels.get(pod.namespace) ?? {};
    if (s.namespaces) return selects(s.namespaces, ns);
    return selects(s.pods!.namespaceSelector, ns) && selects(s.pods!.podSelector, pod.labels);
  }

  private clusterRuleMatches(r: ClusterRule, pod: ModelPod, type: 'Ingress' | 'Egress', p: Seen): boolean {
    const addr = type === 'Ingress' ? p.src : p.dst;
    const peer = this.podOf(addr);
    const peerOk = r.peers.some((x: ClusterPeer) => {
      if (x.networks) return x.networks.some((c) => inCidr(addr, c));
      if (x.nodes) return this.cluster.nodes.some((n) => selects(x.nodes!, n.labels ?? {}) && n.addresses.some((a) => canonicalIp(a) === canonicalIp(addr)));
      return peer !== undefined && this.subjectHas(x, peer);
    });
    if (!peerOk) return false;
    if (!r.ports) return true;
    const destination = type === 'Ingress' ? pod : peer;
    return r.ports.some((pp: ClusterPort) =>
      'name' in pp
        ? (destination?.ports ?? []).some((d) => d.name === pp.name && d.protocol === p.protocol && d.port === p.dport)
        : pp.protocol === p.protocol && (pp.port === undefined || (p.dport >= pp.port && p.dport <= (pp.endPort ?? pp.port))),
    );
  }

  /**
   * Some rule of that direction of some selecting policy admits the peer on this
   * protocol and port; the own node always is, both ways.
   */
  private allowed(pod: ModelPod, type: 'Ingress' | 'Egress', p: Seen): boolean {
    if (this.hostAddrs.has(canonicalIp(type === 'Ingress' ? p.src : p.dst))) return true;
    const peerAddr = type === 'Ingress' ? p.src : p.dst;
    const peer = this.podOf(peerAddr);
    const destination = type === 'Ingress' ? pod : peer;
    return this.selecting(pod, type).some((np) =>
      (type === 'Ingress' ? np.ingress.map((r) => ({ peers: r.from, ports: r.ports })) : np.egress.map((r) => ({ peers: r.to, ports: r.ports }))).some((rule) => {
        // Missing or empty peers / ports mean "all", as in Kubernetes.
        const peerOk = !rule.peers || rule.peers.length === 0 || rule.peers.some((x) => this.peerMatches(np, x, peer, peerAddr));
        const portOk = !rule.ports || rule.ports.length === 0 || rule.ports.some((pp) => portMatches(pp, p, destination));
        return peerOk && portOk;
      }),
    );
  }

  /** A selector peer names pods only (an address no pod has never matches one); an ipBlock names addresses. */
  private peerMatches(np: NetworkPolicy, peer: PolicyPeer, src: ModelPod | undefined, addr: string): boolean {
    if (peer.ipBlock) return inCidr(addr, peer.ipBlock.cidr) && !peer.ipBlock.except.some((e) => inCidr(addr, e));
    if (!src) return false;
    const nsOk = peer.namespaceSelector
      ? selects(peer.namespaceSelector, this.nsLabels.get(src.namespace) ?? {})
      : src.namespace === np.namespace;
    const podOk = peer.podSelector ? selects(peer.podSelector, src.labels) : true;
    return nsOk && podOk;
  }

  // ---- conntrack ----

  private ctKey(pod: ModelPod, dir: Hook, p: Seen, reversed: boolean): string {
    const { sport, dport } = p;
    const t = reversed
      ? [canonicalIp(p.dst), canonicalIp(p.src), dport, sport]
      : [canonicalIp(p.src), canonicalIp(p.dst), sport, dport];
    const opened = reversed ? (dir === 'to_pod' ? 'from_pod' : 'to_pod') : dir;
    return JSON.stringify([pod.namespace, pod.name, opened, p.protocol, ...t]);
  }

  private lifetime(p: Seen, flags: number): bigint {
    if (p.protocol !== 'TCP') return this.lifetimes.other;
    if (flags & CT_CLOSING) return this.lifetimes.tcpClosing;
    if (flags & CT_SEEN_REPLY) return this.lifetimes.tcp;
    return this.lifetimes.tcpSyn;
  }

  private flagsAfter(p: Seen, flags: number, isReply: boolean): number {
    if (isReply) flags |= CT_SEEN_REPLY;
    if (p.protocol === 'TCP' && p.tcpFlags & (TCP_FIN | TCP_RST)) flags |= CT_CLOSING;
    return flags;
  }

  /** A reply of a connection opened the other way first, then a packet of one opened this way. */
  private conntrack(pod: ModelPod, hook: Hook, p: Seen): ReasonLabel | undefined {
    for (const [reversed, reason] of [
      [true, 'pass_reply'],
      [false, 'pass_established'],
    ] as const) {
      const e = this.ct.get(this.ctKey(pod, hook, p, reversed));
      // A bare SYN reusing the ports of a connection that closed opens a new connection.
      const reopens = e !== undefined && p.protocol === 'TCP' && (e.flags & CT_CLOSING) !== 0 && (p.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
      if (e && e.expires > this.now && reopens) {
        this.ct.delete(this.ctKey(pod, hook, p, reversed)); // the datapath overwrites its one entry
        return undefined;
      }
      if (e && e.expires > this.now) {
        const flags = this.flagsAfter(p, e.flags, reversed);
        const expires = this.now + this.lifetime(p, flags);
        // An entry's expiry is rewritten only when it moved by the refresh interval.
        if (flags !== e.flags || expires >= e.expires + this.lifetimes.refresh || expires < e.expires) {
          e.flags = flags;
          e.expires = expires;
        }
        // Policies now decide, for what opened it: a connection they no longer allow drops.
        const type = e.opened === 'to_pod' ? 'Ingress' : 'Egress';
        const now = this.policyReason(pod, type, e.first);
        if (!now.startsWith('pass_')) return now;
        return reason;
      }
    }
    return undefined;
  }

  /**
   * Whether quoted packet q, answered by an error crossing `hook`, is a packet of a live
   * connection of pod: q went the other way (the pod sent it when the error comes in).
   */
  private related(pod: ModelPod, hook: Hook, q: ModelPacket): boolean {
    // A later fragment quotes no L4 header; an IPv6 fragment's quote starts with its Fragment header, not followed.
    if (q.fragment && (q.fragment.offset > 0 || q.src.includes(':'))) return false;
    if (q.protocol === 'ICMP' || q.protocol === 'ICMPv6') {
      if (!ECHO_TYPES[q.protocol].includes(q.icmpType ?? -1)) return false;
    }
    const qHook: Hook = hook === 'to_pod' ? 'from_pod' : 'to_pod';
    if (canonicalIp(qHook === 'from_pod' ? q.src : q.dst) !== canonicalIp(pod.ips.find((ip) => ip.includes(':') === q.src.includes(':')) ?? '')) return false;
    const [sport, dport] = portsOf(q);
    const seen: Seen = { src: q.src, dst: q.dst, protocol: q.protocol, sport, dport, tcpFlags: 0 };
    return [true, false].some((reversed) => {
      const e = this.ct.get(this.ctKey(pod, qHook, seen, reversed));
      return e !== undefined && e.expires > this.now;
    });
  }

  private track(pod: ModelPod, hook: Hook, p: Seen): void {
    const flags = this.flagsAfter(p, 0, false);
    this.ct.set(this.ctKey(pod, hook, p, false), { flags, expires: this.now + this.lifetime(p, flags), opened: hook, first: p });
  }
}

// ---------------------------------------------------------------------------
// Bridge for the tests: the agent's compiler input for a model cluster. This is the
// agent's side of the comparison (identities are allocated per label set, as the agent
// does); the model above never uses it.

export interface Bridge {
  input: DesiredInput;
  /** Endpoint id of each local pod, `namespace/name` → id. */
  endpointIds: Map<string, number>;
  /** Identity of each pod, `namespace/name` → identity. */
  identities: Map<string, number>;
}

/**
 * Compiler input for a cluster. Identities are numbered from 256 in order of first
 * appearance of a label set (namespace, pod labels, namespace labels); local pods get
 * endpoint ids from `firstEndpointId` in pod order.
 */
export function desiredInputOf(cluster: ModelCluster, firstEndpointId = 100): Bridge {
  const byLabels = new Map<string, number>();
  const identities = new Map<number, IdentityLabels>();
  const podIdentity = new Map<string, number>();
  const nsLabels = new Map(cluster.namespaces.map((n) => [n.name, n.labels]));
  const sorted = (l: Labels) => Object.entries(l).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const p of cluster.pods) {
    const labels: IdentityLabels = { namespace: p.namespace, pod: p.labels, namespaceLabels: nsLabels.get(p.namespace) ?? {} };
    const key = JSON.stringify([labels.namespace, sorted(labels.pod), sorted(labels.namespaceLabels)]);
    let id = byLabels.get(key);
    if (id === undefined) {
      id = 256 + byLabels.size;
      byLabels.set(key, id);
      identities.set(id, labels);
    }
    podIdentity.set(`${p.namespace}/${p.name}`, id);
  }
  const endpointIds = new Map<string, number>();
  const localEndpoints: LocalEndpoint[] = cluster.pods
    .filter((p) => p.node === cluster.localNode)
    .map((p, i) => {
      const key = `${p.namespace}/${p.name}`;
      endpointIds.set(key, firstEndpointId + i);
      return {
        key,
        namespace: p.namespace,
        name: p.name,
        ips: p.ips,
        id: firstEndpointId + i,
        ifindex: p.ifindex ?? 1,
        identity: podIdentity.get(key)!,
        labels: p.labels,
        ports: p.ports ?? [],
      };
    });
  return {
    input: {
      node: cluster.localNode,
      localEndpoints,
      clusterEndpoints: cluster.pods.map((p) => ({ ips: p.ips, identity: podIdentity.get(`${p.namespace}/${p.name}`)!, ports: p.ports ?? [] })),
      identities,
      policies: cluster.policies,
      nodes: cluster.nodes.filter((n) => n.name !== cluster.localNode),
      hostAddresses: cluster.nodes.find((n) => n.name === cluster.localNode)?.addresses ?? [],
      hostLabels: cluster.nodes.find((n) => n.name === cluster.localNode)?.labels,
    },
    endpointIds,
    identities: podIdentity,
  };
}
