/**
 * The lab's names and addresses: one machine holding a cluster of network namespaces.
 *
 *   root netns                  tp-underlay netns                 tp-node-<n> netns          tp-pod-<ns>-<pod> netns
 *   ──────────                  ─────────────────                 ─────────────────          ───────────────────────
 *   tp-host 10.250.0.1/24 ═══ tp-uhost ┐
 *   (NATS binds here)                  ├─ tp-br0 (bridge)
 *                             tp-u<h> ─┤        ═════════════ tp-eth0 10.250.0.(10+i)/24
 *                                      │                       tp-<h8> ═══════════════════ tp-eth0 <IP>/32
 *                                      │                       route <IP>/32 dev tp-<h8>    169.254.1.1 dev tp-eth0 scope link
 *                                      │                       route <other CIDR> via       default via 169.254.1.1
 *                                      │                         <other node's underlay IP>  neigh 169.254.1.1 = MAC of tp-<h8> (permanent)
 *                             tp-c<h> ─┘        ═════════════ tp-client-<c> netns: tp-eth0 10.250.0.(200+j)/24
 *                                                              route 10.250.1.0/24 via <first node's underlay IP>
 *
 * Clients stand for hosts outside the cluster ("a client on the internet"): on the
 * underlay only, so they reach node addresses (NodePort) and, through the first node,
 * the lab's external / LoadBalancer range, but never a pod address directly.
 *
 * Pods are routed, not bridged (Calico's model): each pod has a /32 and a fake link-local
 * gateway answered by a permanent neighbour entry, so every packet a pod sends crosses
 * its host-side veth, where the agent attaches its tc programs. Nodes route each other's
 * pod CIDRs natively over the underlay bridge: no tunnels, no NAT.
 *
 * Dual-stack: a lab is dual-stack when LAB.yaml gives any IPv6 pod range or pod address.
 * Then every node and pod has both families (what is not given is allocated), IPv6
 * mirrors IPv4 (underlay fd00:10:250::/64, pods /128 with fe80::1 as their gateway,
 * routes between nodes via their underlay IPv6), and neighbour discovery runs as it
 * comes, except for the pods' gateway entry. A single-stack lab has IPv6 turned off.
 *
 * Everything the lab makes is named `tp-…` so `lab down` can find it without the state file.
 */
import { createHash } from 'node:crypto';
import { BPFFS_ROOT } from '../paths.js';
import { formatAddress, parseAddress, type Family } from '../policy/prefix.js';

/** Where a running lab keeps its state file, NATS data, logs and pod control sockets. */
export const STATE_DIR = '/run/tcplane/lab';
export const STATE_FILE = `${STATE_DIR}/state.json`;
export const LOG_DIR = `${STATE_DIR}/logs`;
export const POD_SOCKET_DIR = `${STATE_DIR}/pods`;
export const CLIENT_SOCKET_DIR = `${STATE_DIR}/clients`;
export const NATS_DIR = `${STATE_DIR}/nats`;

/** The prefix of every netns, link and process title the lab creates. */
export const PREFIX = 'tp-';
export const UNDERLAY_NETNS = 'tp-underlay';
export const BRIDGE = 'tp-br0';
/** Root-namespace end of the underlay (the CLI and NATS live in the root namespace). */
export const HOST_IF = 'tp-host';
export const HOST_PEER = 'tp-uhost';
export const HOST_IP = '10.250.0.1';
export const UNDERLAY_PREFIX = 24;
/** The underlay's IPv6 twin (dual-stack labs): node i is ::(10 + i), client j ::(200 + j), as decimalTwin writes them (the host end stays IPv4: NATS). */
export const UNDERLAY6 = 'fd00:10:250::/64';
export const UNDERLAY6_PREFIX = 64;
/** Node i gets 10.250.0.(FIRST_NODE_HOST + i), up to .LAST_NODE_HOST. */
export const FIRST_NODE_HOST = 10;
export const LAST_NODE_HOST = 190;
export const MAX_NODES = LAST_NODE_HOST - FIRST_NODE_HOST + 1;
/** Client j gets 10.250.0.(FIRST_CLIENT_HOST + j), up to .254. */
export const FIRST_CLIENT_HOST = 200;
export const MAX_CLIENTS = 254 - FIRST_CLIENT_HOST + 1;
/**
 * The lab's external / LoadBalancer IP range. Clients route it via the first node for
 * now (a later change routes a `Local` service's IPs to a node whose health check answers).
 */
export const EXTERNAL_RANGE = '10.250.1.0/24';
export const EXTERNAL_RANGE6 = 'fd00:10:251::/64';
/** Name of the uplink in node namespaces and of the pod's interface in pod namespaces. */
export const POD_IF = 'tp-eth0';
export const UPLINK_IF = 'tp-eth0';
/** The pods' gateway: never configured on any interface, answered by a permanent neighbour entry. */
export const POD_GATEWAY = '169.254.1.1';
export const POD_GATEWAY6 = 'fe80::1';
export const NATS_PORT = 4222;
export const NATS_URL = `nats://${HOST_IP}:${NATS_PORT}`;
/** nats-server's name; `lab down` also finds the server by it when the state file is lost. */
export const NATS_SERVER_NAME = 'tp-lab-nats';
/** Allowed pod range and the default per-node allocation (10.244.<k>.0/24, k = 1, 2, …). */
export const POD_RANGE = '10.244.0.0/16';
/** The lab's service range (ClusterIPs): the top of the pod range, never part of a node's. */
export const SERVICE_CIDR = '10.244.240.0/20';
export const NODE_CIDR_PREFIX = 24;
/** The IPv6 pod range; node k's allocated range is fd00:10:244:<k>::/64 (k in decimalTwin's digits). */
export const POD_RANGE6 = 'fd00:10:244::/48';
export const SERVICE_CIDR6 = 'fd00:10:96::/112';
export const NODE_CIDR_PREFIX6 = 64;
/** Allocated pod IPs start at <network> + FIRST_POD_HOST. */
export const FIRST_POD_HOST = 10;

const h8 = (s: string) => createHash('sha1').update(s).digest('hex').slice(0, 8);

export const nodeNetns = (node: string) => `tp-node-${node}`;
export const podNetns = (namespace: string, pod: string) => `tp-pod-${namespace}-${pod}`;
/** Host-side veth of a pod, in its node's namespace (≤ 15 characters: IFNAMSIZ). */
export const podHostIf = (namespace: string, pod: string) => `tp-${h8(`${namespace}/${pod}`)}`;
/** Bridge-side veth of a node's uplink, in tp-underlay. */
export const uplinkPeerIf = (node: string) => `tp-u${h8(node)}`;
/** Deterministic, locally administered MACs, so the pod's gateway entry needs no read-back. */
export const podHostMac = (namespace: string, pod: string) => mac(0x02, `host:${namespace}/${pod}`);
export const podMac = (namespace: string, pod: string) => mac(0x06, `pod:${namespace}/${pod}`);
export const podSocket = (namespace: string, pod: string) => `${POD_SOCKET_DIR}/${namespace}_${pod}.sock`;
export const podTitle = (namespace: string, pod: string) => `tp-pod ${namespace}/${pod}`;
export const clientNetns = (client: string) => `tp-client-${client}`;
/** Bridge-side veth of a client, in tp-underlay (≤ 15 characters: IFNAMSIZ). */
export const clientBridgeIf = (client: string) => `tp-c${h8(client)}`;
/** The client's end is tp-eth0, as in pods and nodes. */
export const CLIENT_IF = 'tp-eth0';
export const clientSocket = (client: string) => `${CLIENT_SOCKET_DIR}/${client}.sock`;
export const clientTitle = (client: string) => `tp-client ${client}`;
export const clientLog = (client: string) => `${LOG_DIR}/client-${client}.log`;
export const agentTitle = (node: string) => `tp-agent ${node}`;
export const agentLog = (node: string) => `${LOG_DIR}/agent-${node}.log`;
export const podLog = (namespace: string, pod: string) => `${LOG_DIR}/pod-${namespace}_${pod}.log`;
export const nodeBpffs = (node: string) => `${BPFFS_ROOT}/${node}`;

function mac(firstOctet: number, seed: string): string {
  const b = createHash('sha1').update(seed).digest();
  return [firstOctet, b[0], b[1], b[2], b[3], b[4]].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

// ---- address arithmetic, either family (values are bigints: an IPv6 range needs 128 bits) ----

export type { Family } from '../policy/prefix.js';

/** An address's family and value, or undefined when the text is not one. */
export const parseIP = parseAddress;
/** Canonical text of an address (IPv6 in its shortest form). */
export const formatIP = formatAddress;

/** Parses dotted-quad IPv4 to its value, or undefined when it is not one. */
export function parseIPv4(s: string): bigint | undefined {
  const a = parseAddress(s);
  return a?.family === 4 ? a.value : undefined;
}

export const formatIPv4 = (n: bigint) => formatAddress(4, n);

export interface Cidr {
  readonly family: Family;
  /** Network address. */
  readonly base: bigint;
  readonly prefix: number;
  /** Number of addresses. */
  readonly size: bigint;
}

const WIDTH = { 4: 32, 6: 128 } as const;

/** Parses `a.b.c.d/p` or `x::/p`; `error` says why it is not a network (e.g. host bits set). */
export function parseCidr(s: string): { cidr: Cidr } | { error: string } {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  const addr = m ? parseAddress(m[1]!) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (!addr || !(prefix >= 0 && prefix <= WIDTH[addr.family])) {
    return { error: `${JSON.stringify(s)} is not a CIDR (a.b.c.d/prefix or an IPv6 prefix such as fd00:10:244:1::/64)` };
  }
  const size = 1n << BigInt(WIDTH[addr.family] - prefix);
  const base = addr.value - (addr.value % size);
  if (base !== addr.value) return { error: `${s} has host bits set (the network is ${formatAddress(addr.family, base)}/${prefix})` };
  return { cidr: { family: addr.family, base, prefix, size } };
}

/** parseCidr of a constant. */
export const cidrOf = (s: string): Cidr => (parseCidr(s) as { cidr: Cidr }).cidr;

export const cidrContains = (c: Cidr, family: Family, ip: bigint) => family === c.family && ip >= c.base && ip < c.base + c.size;
export const cidrsOverlap = (a: Cidr, b: Cidr) => a.family === b.family && a.base < b.base + b.size && b.base < a.base + a.size;
export const formatCidr = (c: Cidr) => `${formatAddress(c.family, c.base)}/${c.prefix}`;

/**
 * The IPv6 twin of a host number the lab writes in decimal in IPv4 (node 10.250.0.10 is
 * fd00:10:250::10, client .200 is ::200): the same digits, read as hex, so the two read alike.
 */
export const decimalTwin = (n: number) => BigInt(`0x${n}`);
