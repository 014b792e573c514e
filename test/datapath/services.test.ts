// Service translation by the shipped datapath, path by path: DNAT of new connections to
// a frontend, established packets, reverse NAT of replies, refusals built in place (TCP
// RST, ICMP port unreachable), traffic policy, hairpin, policy after translation,
// backend liveness, ClientIP affinity and NodePort from a pod. Loads build/tcplane.bpf.o
// (no pinning), fills its maps through the agent's own compilers (compileServices with a
// BackendIds, the policy compile) and writers (dp.services.sync, dp.maps.sync,
// dp.setLbSeed), runs frames through BPF_PROG_TEST_RUN, and checks the verdict, the one
// reason the metrics count, and the bytes that come out against frames built
// independently by test/helpers/packet.ts (every checksum computed from scratch). Where
// a case needs to know which backend Maglev picks, the independent model
// (test/helpers/service-model.ts) says, and the datapath must agree.
// Needs root (BPF_PROG_TEST_RUN) and `make` first.
//
// BPF_PROG_TEST_RUN attributes every skb to loopback (ifindex 1): the local pods under
// test all sit on ifindex 1. A refusal is sent back with bpf_redirect_peer, which the test
// run reports as TC_ACT_REDIRECT with the answer in data_out.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRun, TC_ACT } from '../../src/bpf/testrun.js';
import { NodeDatapath, type ReasonCount } from '../../src/datapath/node-datapath.js';
import { reasonName } from '../../src/datapath/reasons.js';
import { updateConfig } from '../../src/datapath/runtime-config.js';
import { PROGRAM_NAMES } from '../../src/gen/bpf-names.js';
import type { NetworkPolicy } from '../../src/policy/types.js';
import type { PodRecord } from '../../src/store/schema.js';
import { netpol } from '../helpers/cluster.js';
import { readFrame } from '../helpers/frame-read.js';
import { sctpF } from '../helpers/sctp.js';
import { eth, type Frame } from '../helpers/packet.js';
import { OBJECT_PATH } from '../helpers/paths.js';
import { ServiceModel, type SmBackend, type SmFlow } from '../helpers/service-model.js';
import { BackendIds, clearState, loadCluster, modelCluster, pod, service, type SvcCluster } from '../helpers/services.js';

// ---- the cluster every case starts from ----

const N1 = '10.250.0.10'; // this node
const N2 = '10.250.0.11';
const N3 = '10.250.0.12';
const WORLD = '192.0.2.1';

const CLIENT = '10.244.1.10'; // x/client, n1: the pod most cases connect from
const FRIEND = '10.244.1.11'; // x/friend, n1
const WEB_A = '10.244.1.20'; // x/web-a, n1: http 8080, dns 5353
const WEB_B = '10.244.2.20'; // x/web-b, n2: http 8081, dns 5353
const WEB_C = '10.244.3.20'; // x/web-c, n3: http 8080, no dns port
const WEB_D = '10.244.2.21'; // x/web-d, n2 (added by some cases)
const FAR_A = '10.244.2.30'; // x/far-a, n2
const FAR_B = '10.244.1.31'; // x/far-b, n1 (added by some cases)
const SELF = '10.244.1.30'; // x/self, n1: http 9090
const GUARD = '10.244.1.40'; // x/guard, n1, isolated by some cases
const SIG_A = '10.244.2.40'; // x/sig-a, n2 (SCTP)
const IDLE = '10.244.2.50'; // x/idle, n2, not ready
const PAIR_A = '10.244.2.60'; // x/pair-a, n2
const PAIR_B = '10.244.3.60'; // x/pair-b, n3

const WEB_VIP = '10.244.240.10'; // x/web: http 80 → "http" (nodePort 30080), dns 53/UDP → "dns"
const EMPTY_VIP = '10.244.240.11'; // x/empty: selects nobody
const LOCAL_VIP = '10.244.240.12'; // x/local: internalTrafficPolicy Local, backends on n2 only
const SELF_VIP = '10.244.240.13'; // x/self: selects x/self only
const GUARD_VIP = '10.244.240.14'; // x/guard
const SIG_VIP = '10.244.240.15'; // x/sig: SCTP 3868
const IDLE_VIP = '10.244.240.16'; // x/idle: its only pod is not ready
const PAIR_VIP = '10.244.240.17'; // x/pair: two backends, for liveness
const STICKY_VIP = '10.244.240.18'; // x/sticky: ClientIP affinity over the web pods

const http = (port: number) => ({ name: 'http', port, protocol: 'TCP' as const });
const dns = { name: 'dns', port: 5353, protocol: 'UDP' as const };

const PODS: PodRecord[] = [
  pod('x', 'client', 'n1', CLIENT, { app: 'client' }),
  pod('x', 'friend', 'n1', FRIEND, { app: 'friend' }),
  pod('x', 'web-a', 'n1', WEB_A, { app: 'web' }, { ports: [http(8080), dns] }),
  pod('x', 'web-b', 'n2', WEB_B, { app: 'web' }, { ports: [http(8081), dns] }),
  pod('x', 'web-c', 'n3', WEB_C, { app: 'web' }, { ports: [http(8080)] }),
  pod('x', 'far-a', 'n2', FAR_A, { app: 'far' }),
  pod('x', 'self', 'n1', SELF, { app: 'self' }, { ports: [http(9090)] }),
  pod('x', 'guard', 'n1', GUARD, { app: 'guard' }),
  pod('x', 'sig-a', 'n2', SIG_A, { app: 'sig' }),
  pod('x', 'idle', 'n2', IDLE, { app: 'idle' }, { ready: false }),
  pod('x', 'pair-a', 'n2', PAIR_A, { app: 'pair' }),
  pod('x', 'pair-b', 'n3', PAIR_B, { app: 'pair' }),
];

const SERVICES = [
  service('x', 'web', WEB_VIP, { app: 'web' }, [
    { name: 'http', port: 80, targetPort: 'http', nodePort: 30080, id: 1 },
    { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns', id: 2 },
  ]),
  service('x', 'empty', EMPTY_VIP, { app: 'nobody' }, [
    { name: 'http', port: 80, id: 3 },
    { name: 'dns', port: 53, protocol: 'UDP', id: 4 },
  ]),
  service(
    'x',
    'local',
    LOCAL_VIP,
    { app: 'far' },
    [
      { name: 'http', port: 80, targetPort: 8080, nodePort: 30081, id: 5 },
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353, id: 14 },
    ],
    { internalTrafficPolicy: 'Local' },
  ),
  service('x', 'self', SELF_VIP, { app: 'self' }, [{ port: 80, targetPort: 'http', id: 6 }]),
  service('x', 'guard', GUARD_VIP, { app: 'guard' }, [{ port: 80, targetPort: 8080, id: 7 }]),
  service('x', 'sig', SIG_VIP, { app: 'sig' }, [{ port: 3868, protocol: 'SCTP', id: 8 }]),
  service('x', 'idle', IDLE_VIP, { app: 'idle' }, [{ port: 80, targetPort: 8080, id: 9 }]),
  service('x', 'pair', PAIR_VIP, { app: 'pair' }, [
    { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353, id: 11 },
    { name: 'http', port: 80, targetPort: 8080, id: 12 },
  ]),
  service('x', 'sticky', STICKY_VIP, { app: 'web' }, [{ port: 80, targetPort: 'http', id: 13 }], { sessionAffinity: 'ClientIP' }),
];

const BASE: SvcCluster = {
  node: 'n1',
  nodes: [
    { name: 'n1', addresses: [N1], podCIDRs: ['10.244.1.0/24'] },
    { name: 'n2', addresses: [N2], podCIDRs: ['10.244.2.0/24'] },
    { name: 'n3', addresses: [N3], podCIDRs: ['10.244.3.0/24'] },
  ],
  namespaces: [
    { name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } },
    { name: 'y', labels: { 'kubernetes.io/metadata.name': 'y' } },
  ],
  pods: PODS,
  services: SERVICES,
  policies: [],
  seed: 0x5eed1234,
};

const withPolicies = (c: SvcCluster, policies: NetworkPolicy[]): SvcCluster => ({ ...c, policies });
const withPod = (c: SvcCluster, p: PodRecord): SvcCluster => ({ ...c, pods: [...c.pods, p] });
const withoutPod = (c: SvcCluster, name: string): SvcCluster => ({ ...c, pods: c.pods.filter((p) => p.name !== name) });
const podChanged = (c: SvcCluster, name: string, change: Partial<PodRecord>): SvcCluster => ({
  ...c,
  pods: c.pods.map((p) => (p.name === name ? { ...p, ...change } : p)),
});
const serviceChanged = (c: SvcCluster, name: string, change: Parameters<typeof service>[5]): SvcCluster => ({
  ...c,
  services: c.services.map((s) => (s.name === name ? { ...s, ...change } : s)),
});

// ---- what the independent model says ----

const tcpFlow = (src: string, dst: string, sport: number, dport: number): SmFlow => ({ src, dst, protocol: 'TCP', sport, dport });
const udpFlow = (src: string, dst: string, sport: number, dport: number): SmFlow => ({ src, dst, protocol: 'UDP', sport, dport });
const pick = (c: SvcCluster, f: SmFlow): SmBackend => new ServiceModel(modelCluster(c)).backendOf(f);

/** Source ports (from `from` up) of flows like `f` that Maglev sends to `pod` (or, with `not`, elsewhere). */
function sportsTo(c: SvcCluster, f: Omit<SmFlow, 'sport'>, pod: string, n = 1, from = 40000, not = false): number[] {
  const m = new ServiceModel(modelCluster(c));
  const out: number[] = [];
  for (let s = from; out.length < n; s++) {
    if (s > 65535) throw new Error(`no ${n} source ports to ${pod}`);
    if ((m.backendOf({ ...f, sport: s }).pod === pod) !== not) out.push(s);
  }
  return out;
}

// ---- frames ----

const MAC_POD = '02:00:00:00:00:01'; // packet.ts's default source MAC
const MAC_PEER = '02:00:00:00:00:02'; // and destination MAC

interface TcpSeg {
  sport: number;
  dport: number;
  flags?: string;
  seq?: number;
  ack?: number;
  payload?: number | Buffer;
  /** IPv4 TTL; default 64 (one hop later: 63). */
  ttl?: number;
}
const tcpF = (src: string, dst: string, s: TcpSeg): Frame => {
  const f = eth().ipv4({ src, dst, ...(s.ttl === undefined ? {} : { ttl: s.ttl }) }).tcp({ sport: s.sport, dport: s.dport, flags: s.flags ?? 'S', seq: s.seq ?? 1000, ack: s.ack ?? 0 });
  return s.payload === undefined ? f : f.payload(s.payload);
};
const udpF = (src: string, dst: string, sport: number, dport: number, payload: number | Buffer = 8): Frame =>
  eth().ipv4({ src, dst }).udp({ sport, dport }).payload(payload);

/** An ICMP error (type 3 code 4: fragmentation needed, by default) from `src` to `dst` quoting the IP packet of `quoted`. */
const icmpErrF = (src: string, dst: string, quoted: Frame, type = 3, code = 4): Frame =>
  eth().ipv4({ src, dst }).icmp({ type, code }).payload(quoted.build().subarray(14));
const ROUTER = '192.0.2.254';

/** The frame with its UDP checksum field set to 0 ("no checksum", IPv4). */
function noUdpChecksum(f: Frame): Buffer {
  const b = Buffer.from(f.build());
  b.writeUInt16BE(0, 14 + 20 + 6);
  return b;
}

/** The RST the datapath must answer `seg` (sent by `client` to `frontend`) with. */
function rstFor(frontend: string, client: string, seg: TcpSeg & { seq: number }, payloadLen = 0): Frame {
  const flags = seg.flags ?? 'S';
  const answer = flags.includes('A')
    ? { flags: 'R', seq: seg.ack ?? 0, ack: 0 }
    : { flags: 'RA', seq: 0, ack: (seg.seq + payloadLen + (flags.includes('S') ? 1 : 0) + (flags.includes('F') ? 1 : 0)) >>> 0 };
  return eth({ src: MAC_PEER, dst: MAC_POD })
    .ipv4({ src: frontend, dst: client, df: true, id: 0, ttl: 64 })
    .tcp({ sport: seg.dport, dport: seg.sport, window: 0, ...answer })
    .unpadded();
}

/** The ICMP port unreachable refusing `refused`: the refused IP packet quoted in whole words, at most 128 bytes. */
function unreachableFor(frontend: string, client: string, refused: Frame): Frame {
  const b = refused.build();
  const ipLen = b.readUInt16BE(16);
  const quote = b.subarray(14, 14 + (Math.min(ipLen, 128) & ~3));
  return eth({ src: MAC_PEER, dst: MAC_POD })
    .ipv4({ src: frontend, dst: client, df: true, id: 0, ttl: 64 })
    .icmp({ type: 3, code: 3, id: 0, seq: 0 })
    .payload(Buffer.from(quote))
    .unpadded();
}

// ---- cases ----

type Hook = 'from_pod' | 'to_pod' | 'from_uplink';
type Bytes = Frame | Buffer;
/** A frame sent on one hook: of the pod veth it names (from_pod: its source; to_pod: its destination), or the node's uplink. */
interface PacketStep {
  hook: Hook;
  send: Bytes;
}
/** The cluster changes (pods, services): the maps are compiled and synced again; conntrack and affinity stay. */
interface ChangeStep {
  change: (c: SvcCluster) => SvcCluster;
}
interface PauseStep {
  pauseMs: number;
}
type Step = PacketStep | ChangeStep | PauseStep;

type Verdict = 'pass' | 'drop' | 'redirect';
interface Outcome {
  /** The one reason counted. */
  reason: string;
  /** Default: pass for pass_*, redirect for reject_no_backend, drop otherwise. */
  verdict?: Verdict;
  /** The frame that comes out; default: the one sent, unchanged. */
  out?: Bytes;
  /**
   * Where the reason is counted; default: the pod's side of the hook (from_pod: egress;
   * to_pod, and from_uplink delivering into a pod: ingress).
   */
  at?: Pick<ReasonCount, 'hook' | 'direction'>;
}

interface Case {
  description: string;
  setup: SvcCluster;
  input: Step[];
  /** One per packet step, in order. */
  expect: Outcome[];
}

const from = (send: Bytes): PacketStep => ({ hook: 'from_pod', send });
const to = (send: Bytes): PacketStep => ({ hook: 'to_pod', send });
const uplink = (send: Bytes): PacketStep => ({ hook: 'from_uplink', send });
/** Judged at the uplink as a pod's ingress and handed into the pod (bpf_redirect_peer). */
const delivered = (reason: string, out: Bytes): Outcome => ({ reason, verdict: 'redirect', out });
const change = (fn: (c: SvcCluster) => SvcCluster): ChangeStep => ({ change: fn });
const translated = (reason: string, out: Bytes): Outcome => ({ reason, out });
const unchanged = (reason: string, verdict?: Verdict): Outcome => ({ reason, ...(verdict ? { verdict } : {}) });

// -- ClusterIP translation --

const web = pick(BASE, tcpFlow(CLIENT, WEB_VIP, 40000, 80));
const webSyn: TcpSeg = { sport: 40000, dport: 80, flags: 'S', seq: 1000 };
const webSynAck: TcpSeg = { sport: web.port, dport: 40000, flags: 'SA', seq: 5000, ack: 1001 };
const webAck: TcpSeg = { sport: 40000, dport: 80, flags: 'PA', seq: 1001, ack: 5001, payload: 20 };
const webData: TcpSeg = { sport: web.port, dport: 40000, flags: 'PA', seq: 5001, ack: 1021, payload: 100 };
const spread = Array.from({ length: 12 }, (_, i) => 40100 + i).map((sport) => ({ sport, be: pick(BASE, tcpFlow(CLIENT, WEB_VIP, sport, 80)) }));
const dnsBe = pick(BASE, udpFlow(CLIENT, WEB_VIP, 40000, 53));
const dnsBe2 = pick(BASE, udpFlow(CLIENT, WEB_VIP, 40001, 53));
/** A later fragment's payload that begins like a UDP header (ports 40000 → 53): it must stay as it is. */
const laterPayload = Buffer.concat([Buffer.from([0x9c, 0x40, 0x00, 0x35]), Buffer.alloc(12, 0xab)]);

const TRANSLATION_CASES: Case[] = [
  {
    description: 'services - ClusterIP, TCP: the SYN goes to the backend Maglev picks (address, port, IP and TCP checksums); the reply comes from the ClusterIP; later segments keep the backend',
    setup: BASE,
    input: [
      from(tcpF(CLIENT, WEB_VIP, webSyn)),
      to(tcpF(web.ip, CLIENT, webSynAck)),
      from(tcpF(CLIENT, WEB_VIP, webAck)),
      to(tcpF(web.ip, CLIENT, webData)),
      from(tcpF(CLIENT, WEB_VIP, { ...webAck, flags: 'FA', seq: 1021, ack: 5101, payload: undefined })),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, web.ip, { ...webSyn, dport: web.port })),
      translated('pass_reply', tcpF(WEB_VIP, CLIENT, { ...webSynAck, sport: 80 })),
      translated('pass_established', tcpF(CLIENT, web.ip, { ...webAck, dport: web.port })),
      translated('pass_reply', tcpF(WEB_VIP, CLIENT, { ...webData, sport: 80 })),
      translated('pass_established', tcpF(CLIENT, web.ip, { ...webAck, flags: 'FA', seq: 1021, ack: 5101, payload: undefined, dport: web.port })),
    ],
  },
  {
    description: "services - ClusterIP: each new connection goes to the backend the model picks, the targetPort resolved by name on each pod (8080 or 8081)",
    setup: BASE,
    input: spread.map(({ sport }) => from(tcpF(CLIENT, WEB_VIP, { sport, dport: 80 }))),
    expect: spread.map(({ sport, be }) => translated('pass_default', tcpF(CLIENT, be.ip, { sport, dport: be.port }))),
  },
  {
    description: 'services - ClusterIP, UDP: the datagram goes to the backend (only pods with a "dns" port), the answer comes from the ClusterIP, the next datagram keeps the backend',
    setup: BASE,
    input: [
      from(udpF(CLIENT, WEB_VIP, 40000, 53)),
      to(udpF(dnsBe.ip, CLIENT, dnsBe.port, 40000, 40)),
      from(udpF(CLIENT, WEB_VIP, 40000, 53, 12)),
    ],
    expect: [
      translated('pass_default', udpF(CLIENT, dnsBe.ip, 40000, dnsBe.port)),
      translated('pass_reply', udpF(WEB_VIP, CLIENT, 53, 40000, 40)),
      translated('pass_established', udpF(CLIENT, dnsBe.ip, 40000, dnsBe.port, 12)),
    ],
  },
  {
    description: 'services - ClusterIP, UDP: a datagram without a checksum (0) is translated and keeps 0, both ways',
    setup: BASE,
    input: [from(noUdpChecksum(udpF(CLIENT, WEB_VIP, 40001, 53))), to(noUdpChecksum(udpF(dnsBe2.ip, CLIENT, dnsBe2.port, 40001)))],
    expect: [
      translated('pass_default', noUdpChecksum(udpF(CLIENT, dnsBe2.ip, 40001, dnsBe2.port))),
      translated('pass_reply', noUdpChecksum(udpF(WEB_VIP, CLIENT, 53, 40001))),
    ],
  },
  {
    description: 'services - ClusterIP, SCTP: only the address is translated (the backend listens on the service port), the CRC32c is left alone; the answer comes from the ClusterIP',
    setup: BASE,
    input: [from(sctpF(CLIENT, SIG_VIP, 40000, 3868)), to(sctpF(SIG_A, CLIENT, 3868, 40000, 2)), from(sctpF(CLIENT, SIG_VIP, 40000, 3868))],
    expect: [
      translated('pass_default', sctpF(CLIENT, SIG_A, 40000, 3868)),
      translated('pass_reply', sctpF(SIG_VIP, CLIENT, 3868, 40000, 2)),
      translated('pass_established', sctpF(CLIENT, SIG_A, 40000, 3868)),
    ],
  },
  {
    description: 'services - a fragmented UDP datagram: the first fragment is translated in full, a later one gets its addresses rewritten and its bytes (no ports there) left alone',
    setup: BASE,
    input: [
      from(eth().ipv4({ src: CLIENT, dst: WEB_VIP, id: 0x77, mf: true }).udp({ sport: 40000, dport: 53 }).payload(8)),
      from(eth().ipv4({ src: CLIENT, dst: WEB_VIP, id: 0x77, fragOffset: 2, mf: true, protocol: 17 }).payload(laterPayload)),
      from(eth().ipv4({ src: CLIENT, dst: WEB_VIP, id: 0x77, fragOffset: 4, protocol: 17 }).payload(laterPayload)),
    ],
    expect: [
      translated('pass_default', eth().ipv4({ src: CLIENT, dst: dnsBe.ip, id: 0x77, mf: true }).udp({ sport: 40000, dport: dnsBe.port }).payload(8)),
      translated('pass_established', eth().ipv4({ src: CLIENT, dst: dnsBe.ip, id: 0x77, fragOffset: 2, mf: true, protocol: 17 }).payload(laterPayload)),
      translated('pass_established', eth().ipv4({ src: CLIENT, dst: dnsBe.ip, id: 0x77, fragOffset: 4, protocol: 17 }).payload(laterPayload)),
    ],
  },
  {
    description: "services - an ICMP error about a ClusterIP connection reaches its client translated back: a router's fragmentation needed quotes the ClusterIP again; the backend's port unreachable comes from the ClusterIP (IP, TCP/UDP and ICMP checksums)",
    setup: BASE,
    input: [
      from(tcpF(CLIENT, WEB_VIP, webSyn)),
      to(icmpErrF(ROUTER, CLIENT, tcpF(CLIENT, web.ip, { ...webSyn, dport: web.port }))),
      from(udpF(CLIENT, WEB_VIP, 40000, 53)),
      to(icmpErrF(dnsBe.ip, CLIENT, udpF(CLIENT, dnsBe.ip, 40000, dnsBe.port), 3, 3)),
      to(icmpErrF(ROUTER, CLIENT, tcpF(CLIENT, web.ip, { ...webSyn, sport: 40999, dport: web.port }))),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, web.ip, { ...webSyn, dport: web.port })),
      translated('pass_related', icmpErrF(ROUTER, CLIENT, tcpF(CLIENT, WEB_VIP, webSyn))),
      translated('pass_default', udpF(CLIENT, dnsBe.ip, 40000, dnsBe.port)),
      translated('pass_related', icmpErrF(WEB_VIP, CLIENT, udpF(CLIENT, WEB_VIP, 40000, 53), 3, 3)),
      unchanged('pass_default'), // no such connection: an ICMP packet like any other (the client is not isolated)
    ],
  },
  {
    description: "services - the client's ICMP error about a reply it got from a ClusterIP goes to the backend as the backend sent it: the quote's source and the error's destination become the backend again",
    setup: BASE,
    input: [
      from(udpF(CLIENT, WEB_VIP, 40000, 53)),
      to(udpF(dnsBe.ip, CLIENT, dnsBe.port, 40000)),
      from(icmpErrF(CLIENT, WEB_VIP, udpF(WEB_VIP, CLIENT, 53, 40000), 3, 3)),
    ],
    expect: [
      translated('pass_default', udpF(CLIENT, dnsBe.ip, 40000, dnsBe.port)),
      translated('pass_reply', udpF(WEB_VIP, CLIENT, 53, 40000)),
      translated('pass_related', icmpErrF(CLIENT, dnsBe.ip, udpF(dnsBe.ip, CLIENT, dnsBe.port, 40000), 3, 3)),
    ],
  },
  {
    description: 'services - not a frontend: a ClusterIP on another port or protocol, and ICMP to it, pass untranslated',
    setup: BASE,
    input: [
      from(tcpF(CLIENT, WEB_VIP, { sport: 40000, dport: 81 })),
      from(udpF(CLIENT, WEB_VIP, 40000, 80)),
      from(sctpF(CLIENT, WEB_VIP, 40000, 80)),
      from(eth().ipv4({ src: CLIENT, dst: WEB_VIP }).icmp({ type: 8, id: 9 }).payload(16)),
    ],
    expect: [unchanged('pass_default'), unchanged('pass_default'), unchanged('pass_default'), unchanged('pass_default')],
  },
];

// -- refusals --

const refusedSyn = { sport: 40000, dport: 80, flags: 'S', seq: 123456 };
const refusedAck = { sport: 40001, dport: 80, flags: 'PA', seq: 1000, ack: 0xfffffff0, payload: 10 };
const synWithData = { sport: 40002, dport: 80, flags: 'S', seq: 0xfffffff8, payload: 10 };
const finNoAck = { sport: 40003, dport: 80, flags: 'F', seq: 77, payload: 3 };

const REFUSAL_CASES: Case[] = [
  {
    description: 'services - no endpoints, TCP: a SYN is answered at once by a RST from the ClusterIP (ports swapped, RST|ACK, ack = seq + 1, checksums), sent back into the pod',
    setup: BASE,
    input: [from(tcpF(CLIENT, EMPTY_VIP, refusedSyn))],
    expect: [translated('reject_no_backend', rstFor(EMPTY_VIP, CLIENT, refusedSyn))],
  },
  {
    description: 'services - no endpoints, TCP: a segment with ACK gets a RST whose seq is its ack (no ACK flag); without ACK, ack covers its data, SYN and FIN (mod 2^32)',
    setup: BASE,
    input: [from(tcpF(CLIENT, EMPTY_VIP, refusedAck)), from(tcpF(CLIENT, EMPTY_VIP, synWithData)), from(tcpF(CLIENT, EMPTY_VIP, finNoAck))],
    expect: [
      translated('reject_no_backend', rstFor(EMPTY_VIP, CLIENT, refusedAck, 10)),
      translated('reject_no_backend', rstFor(EMPTY_VIP, CLIENT, synWithData, 10)),
      translated('reject_no_backend', rstFor(EMPTY_VIP, CLIENT, finNoAck, 3)),
    ],
  },
  {
    description: 'services - no endpoints, TCP: a RST is never answered with a RST: it is refused (dropped) and nothing goes back',
    setup: BASE,
    input: [from(tcpF(CLIENT, EMPTY_VIP, { sport: 40004, dport: 80, flags: 'R', seq: 5 })), from(tcpF(CLIENT, EMPTY_VIP, { sport: 40005, dport: 80, flags: 'RA', seq: 5, ack: 9 }))],
    expect: [unchanged('reject_no_backend', 'drop'), unchanged('reject_no_backend', 'drop')],
  },
  {
    description: 'services - no endpoints, UDP: an ICMP port unreachable (type 3 code 3) from the ClusterIP quotes the datagram (IP header on, whole words, at most 128 bytes), checksums',
    setup: BASE,
    input: [from(udpF(CLIENT, EMPTY_VIP, 40000, 53)), from(udpF(CLIENT, EMPTY_VIP, 40001, 53, 9)), from(udpF(CLIENT, EMPTY_VIP, 40002, 53, 300))],
    expect: [
      translated('reject_no_backend', unreachableFor(EMPTY_VIP, CLIENT, udpF(CLIENT, EMPTY_VIP, 40000, 53))),
      translated('reject_no_backend', unreachableFor(EMPTY_VIP, CLIENT, udpF(CLIENT, EMPTY_VIP, 40001, 53, 9))),
      translated('reject_no_backend', unreachableFor(EMPTY_VIP, CLIENT, udpF(CLIENT, EMPTY_VIP, 40002, 53, 300))),
    ],
  },
  {
    description: 'services - a service whose only pod is not ready has no endpoint: refused at once',
    setup: BASE,
    input: [from(tcpF(CLIENT, IDLE_VIP, refusedSyn))],
    expect: [translated('reject_no_backend', rstFor(IDLE_VIP, CLIENT, refusedSyn))],
  },
];

// -- traffic policy --

const farFromPod = pick(BASE, tcpFlow(CLIENT, N1, 45000, 30081));
const withFarB = withPod(BASE, pod('x', 'far-b', 'n1', FAR_B, { app: 'far' }));

const TRAFFIC_POLICY_CASES: Case[] = [
  {
    description: 'services - internalTrafficPolicy Local with endpoints on other nodes only: the ClusterIP drops (drop_no_local_backend), TCP and UDP alike',
    setup: BASE,
    input: [from(tcpF(CLIENT, LOCAL_VIP, { sport: 45000, dport: 80 })), from(udpF(CLIENT, LOCAL_VIP, 45000, 53))],
    expect: [unchanged('drop_no_local_backend'), unchanged('drop_no_local_backend')],
  },
  {
    description: "services - internalTrafficPolicy Local does not bind a pod's NodePort connection: it goes to the cluster's endpoints",
    setup: BASE,
    input: [from(tcpF(CLIENT, N1, { sport: 45000, dport: 30081 }))],
    expect: [translated('pass_default', tcpF(CLIENT, FAR_A, { sport: 45000, dport: 8080 }))],
  },
  {
    description: 'services - internalTrafficPolicy Local with a local endpoint: every connection to the ClusterIP goes to it',
    setup: withFarB,
    input: [40000, 40001, 40002, 40003, 40004].map((sport) => from(tcpF(CLIENT, LOCAL_VIP, { sport, dport: 80 }))),
    expect: [40000, 40001, 40002, 40003, 40004].map((sport) => translated('pass_default', tcpF(CLIENT, FAR_B, { sport, dport: 8080 }))),
  },
];

// -- hairpin and policy after translation --

const denyAllX = netpol('x', 'deny-all');
const guardFromFriend = netpol('x', 'guard-from-friend', { podSelector: { matchLabels: { app: 'guard' }, matchExpressions: [] }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'friend' }, matchExpressions: [] } }] }] });
/** x/client may send only to x/guard on TCP `port`. */
const clientEgressTo = (port: number) =>
  netpol('x', `client-to-guard-${port}`, {
    podSelector: { matchLabels: { app: 'client' }, matchExpressions: [] },
    policyTypes: ['Egress'],
    egress: [{ to: [{ podSelector: { matchLabels: { app: 'guard' }, matchExpressions: [] } }], ports: [{ protocol: 'TCP', port }] }],
  });
const hpSyn: TcpSeg = { sport: 41000, dport: 80, flags: 'S', seq: 1000 };
const hpSynAck: TcpSeg = { sport: 9090, dport: 41000, flags: 'SA', seq: 9000, ack: 1001 };
const hpAck: TcpSeg = { sport: 41000, dport: 80, flags: 'PA', seq: 1001, ack: 9001, payload: 5 };

const POLICY_CASES: Case[] = [
  {
    description: 'services - hairpin: a pod reaching its own service sees itself come from the ClusterIP (port kept) to its targetPort, passes its own deny-all as established; its reply returns as ClusterIP:port → client port',
    setup: withPolicies(BASE, [denyAllX]),
    input: [
      from(tcpF(SELF, SELF_VIP, hpSyn)),
      to(tcpF(SELF_VIP, SELF, { ...hpSyn, dport: 9090 })),
      from(tcpF(SELF, SELF_VIP, hpSynAck)),
      to(tcpF(SELF_VIP, SELF, { ...hpSynAck, sport: 80 })),
      from(tcpF(SELF, SELF_VIP, hpAck)),
      to(tcpF(SELF_VIP, SELF, { ...hpAck, dport: 9090 })),
    ],
    expect: [
      translated('pass_hairpin', tcpF(SELF_VIP, SELF, { ...hpSyn, dport: 9090 })),
      unchanged('pass_established'),
      translated('pass_reply', tcpF(SELF_VIP, SELF, { ...hpSynAck, sport: 80 })),
      unchanged('pass_reply'),
      translated('pass_established', tcpF(SELF_VIP, SELF, { ...hpAck, dport: 9090 })),
      unchanged('pass_established'),
    ],
  },
  {
    description: "services - hairpin state is the pod's own: another pod's connection to the same service still meets the backend's deny-all",
    setup: withPolicies(BASE, [denyAllX]),
    input: [from(tcpF(CLIENT, SELF_VIP, hpSyn)), to(tcpF(CLIENT, SELF, { ...hpSyn, dport: 9090 }))],
    expect: [translated('pass_default', tcpF(CLIENT, SELF, { ...hpSyn, dport: 9090 })), unchanged('drop_policy_default')],
  },
  {
    description: "services - policy after translation: an isolated backend admits a connection through its ClusterIP only when its policy admits the client's own identity",
    setup: withPolicies(BASE, [guardFromFriend]),
    input: [
      from(tcpF(CLIENT, GUARD_VIP, { sport: 42000, dport: 80 })),
      to(tcpF(CLIENT, GUARD, { sport: 42000, dport: 8080 })),
      from(tcpF(FRIEND, GUARD_VIP, { sport: 42000, dport: 80 })),
      to(tcpF(FRIEND, GUARD, { sport: 42000, dport: 8080 })),
      from(tcpF(GUARD, FRIEND, { sport: 8080, dport: 42000, flags: 'SA', seq: 7000, ack: 1001 })),
      to(tcpF(GUARD, FRIEND, { sport: 8080, dport: 42000, flags: 'SA', seq: 7000, ack: 1001 })),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, GUARD, { sport: 42000, dport: 8080 })),
      unchanged('drop_policy_default'),
      translated('pass_default', tcpF(FRIEND, GUARD, { sport: 42000, dport: 8080 })),
      unchanged('pass_policy'),
      unchanged('pass_reply'),
      translated('pass_reply', tcpF(GUARD_VIP, FRIEND, { sport: 80, dport: 42000, flags: 'SA', seq: 7000, ack: 1001 })),
    ],
  },
  {
    description: "services - egress policy after translation: the client's egress is judged against the backend and its targetPort, not the ClusterIP and its port",
    setup: withPolicies(BASE, [clientEgressTo(8080)]),
    input: [from(tcpF(CLIENT, GUARD_VIP, { sport: 43000, dport: 80 })), from(tcpF(CLIENT, WEB_VIP, { sport: 43001, dport: 80 }))],
    expect: [translated('pass_policy', tcpF(CLIENT, GUARD, { sport: 43000, dport: 8080 })), unchanged('drop_policy_default')],
  },
  {
    description: "services - egress policy after translation: a rule naming only the service's port admits nothing through it",
    setup: withPolicies(BASE, [clientEgressTo(80)]),
    input: [from(tcpF(CLIENT, GUARD_VIP, { sport: 43000, dport: 80 }))],
    expect: [unchanged('drop_policy_default')],
  },
];

// -- backend liveness --

const pairDns = { src: CLIENT, dst: PAIR_VIP, protocol: 'UDP' as const, dport: 53 };
const pairHttp = { src: CLIENT, dst: PAIR_VIP, protocol: 'TCP' as const, dport: 80 };
const [uA] = sportsTo(BASE, pairDns, 'x/pair-a', 1, 46000);
const [tA, tA2] = sportsTo(BASE, pairHttp, 'x/pair-a', 2, 46000);
const newToA = sportsTo(BASE, pairHttp, 'x/pair-a', 3, 47000);
const newUdpToA = sportsTo(BASE, pairDns, 'x/pair-a', 3, 47000);
const bothTerminating = (c: SvcCluster) => podChanged(podChanged(c, 'pair-a', { ready: false, terminating: true }), 'pair-b', { ready: false, terminating: true });
const aTerminating = podChanged(BASE, 'pair-a', { ready: false, terminating: true });
const laterToB = sportsTo(BASE, pairHttp, 'x/pair-b', 2, 48000);
const laterToA = sportsTo(BASE, pairHttp, 'x/pair-a', 2, 48000);

/** A UDP flow to x/pair through PAIR_VIP, its backend pair-a removed between two datagrams. */
const udpMovesOff = (): Step[] => [
  from(udpF(CLIENT, PAIR_VIP, uA!, 53)),
  to(udpF(PAIR_A, CLIENT, 5353, uA!)),
  change((c) => withoutPod(c, 'pair-a')),
  from(udpF(CLIENT, PAIR_VIP, uA!, 53)),
  to(udpF(PAIR_B, CLIENT, 5353, uA!)),
  from(udpF(CLIENT, PAIR_VIP, uA!, 53)),
];
/** What udpMovesOff must give: to pair-a, then to pair-b, each new datagram passing by `verdict`. */
const udpMovedOff = (verdict: 'pass_default' | 'pass_policy') => [
  translated(verdict, udpF(CLIENT, PAIR_A, uA!, 5353)),
  translated('pass_reply', udpF(PAIR_VIP, CLIENT, 53, uA!)),
  translated(verdict, udpF(CLIENT, PAIR_B, uA!, 5353)),
  translated('pass_reply', udpF(PAIR_VIP, CLIENT, 53, uA!)),
  translated('pass_established', udpF(CLIENT, PAIR_B, uA!, 5353)),
];

const LIVENESS_CASES: Case[] = [
  {
    description: 'services - liveness: an established UDP flow whose backend leaves the service moves to another backend on its next datagram, and its answers still come from the ClusterIP',
    setup: BASE,
    input: udpMovesOff(),
    expect: udpMovedOff('pass_default'),
  },
  {
    description: "services - liveness: an egress-isolated client's UDP flow whose backend goes away moves to another backend its policy admits (judged there), rather than being cut",
    setup: withPolicies(BASE, [
      netpol('x', 'client-to-pair', {
        podSelector: { matchLabels: { app: 'client' }, matchExpressions: [] },
        policyTypes: ['Egress'],
        egress: [{ to: [{ podSelector: { matchLabels: { app: 'pair' }, matchExpressions: [] } }], ports: [{ protocol: 'UDP', port: 5353 }] }],
      }),
    ]),
    input: udpMovesOff(), // pair-a's address leaves the ipcache: the client's generation moves
    expect: udpMovedOff('pass_policy'),
  },
  {
    description: 'services - liveness: a TCP connection whose backend turns not ready keeps it; new connections go elsewhere; a UDP flow to it moves on',
    setup: BASE,
    input: [
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA!, dport: 80 })),
      from(udpF(CLIENT, PAIR_VIP, uA!, 53)),
      change((c) => podChanged(c, 'pair-a', { ready: false })),
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA!, dport: 80, flags: 'A', seq: 1001, ack: 1 })),
      to(tcpF(PAIR_A, CLIENT, { sport: 8080, dport: tA!, flags: 'A', seq: 1, ack: 1001 })),
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA2!, dport: 80 })),
      from(udpF(CLIENT, PAIR_VIP, uA!, 53)),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, PAIR_A, { sport: tA!, dport: 8080 })),
      translated('pass_default', udpF(CLIENT, PAIR_A, uA!, 5353)),
      translated('pass_established', tcpF(CLIENT, PAIR_A, { sport: tA!, dport: 8080, flags: 'A', seq: 1001, ack: 1 })),
      translated('pass_reply', tcpF(PAIR_VIP, CLIENT, { sport: 80, dport: tA!, flags: 'A', seq: 1, ack: 1001 })),
      translated('pass_default', tcpF(CLIENT, PAIR_B, { sport: tA2!, dport: 8080 })),
      translated('pass_default', udpF(CLIENT, PAIR_B, uA!, 5353)),
    ],
  },
  {
    description: 'services - a closed connection to a ClusterIP reopened on the same ports after its backend went away: the new SYN goes to the backend there is, its replies come from the ClusterIP, its segments follow it',
    setup: BASE,
    input: [
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA!, dport: 80 })),
      to(tcpF(PAIR_A, CLIENT, { sport: 8080, dport: tA!, flags: 'SA', seq: 1, ack: 1001 })),
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA!, dport: 80, flags: 'FA', seq: 1001, ack: 2 })),
      to(tcpF(PAIR_A, CLIENT, { sport: 8080, dport: tA!, flags: 'FA', seq: 2, ack: 1002 })),
      change((c) => podChanged(c, 'pair-a', { ready: false })),
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA!, dport: 80, seq: 9000 })),
      to(tcpF(PAIR_B, CLIENT, { sport: 8080, dport: tA!, flags: 'SA', seq: 7, ack: 9001 })),
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA!, dport: 80, flags: 'A', seq: 9001, ack: 8 })),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, PAIR_A, { sport: tA!, dport: 8080 })),
      translated('pass_reply', tcpF(PAIR_VIP, CLIENT, { sport: 80, dport: tA!, flags: 'SA', seq: 1, ack: 1001 })),
      translated('pass_established', tcpF(CLIENT, PAIR_A, { sport: tA!, dport: 8080, flags: 'FA', seq: 1001, ack: 2 })),
      translated('pass_reply', tcpF(PAIR_VIP, CLIENT, { sport: 80, dport: tA!, flags: 'FA', seq: 2, ack: 1002 })),
      translated('pass_default', tcpF(CLIENT, PAIR_B, { sport: tA!, dport: 8080, seq: 9000 })),
      translated('pass_reply', tcpF(PAIR_VIP, CLIENT, { sport: 80, dport: tA!, flags: 'SA', seq: 7, ack: 9001 })),
      translated('pass_established', tcpF(CLIENT, PAIR_B, { sport: tA!, dport: 8080, flags: 'A', seq: 9001, ack: 8 })),
    ],
  },
  {
    description: 'services - liveness: a terminating backend keeps its TCP and UDP flows but takes no new connection while a ready one exists',
    setup: BASE,
    input: [
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA!, dport: 80 })),
      from(udpF(CLIENT, PAIR_VIP, uA!, 53)),
      change((c) => podChanged(c, 'pair-a', { ready: false, terminating: true })),
      from(tcpF(CLIENT, PAIR_VIP, { sport: tA!, dport: 80, flags: 'A', seq: 1001, ack: 1 })),
      from(udpF(CLIENT, PAIR_VIP, uA!, 53)),
      to(udpF(PAIR_A, CLIENT, 5353, uA!)),
      ...newToA.map((sport) => from(tcpF(CLIENT, PAIR_VIP, { sport, dport: 80 }))),
      ...newUdpToA.map((sport) => from(udpF(CLIENT, PAIR_VIP, sport, 53))),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, PAIR_A, { sport: tA!, dport: 8080 })),
      translated('pass_default', udpF(CLIENT, PAIR_A, uA!, 5353)),
      translated('pass_established', tcpF(CLIENT, PAIR_A, { sport: tA!, dport: 8080, flags: 'A', seq: 1001, ack: 1 })),
      translated('pass_established', udpF(CLIENT, PAIR_A, uA!, 5353)),
      translated('pass_reply', udpF(PAIR_VIP, CLIENT, 53, uA!)),
      ...newToA.map((sport) => translated('pass_default', tcpF(CLIENT, PAIR_B, { sport, dport: 8080 }))),
      ...newUdpToA.map((sport) => translated('pass_default', udpF(CLIENT, PAIR_B, sport, 5353))),
    ],
  },
  {
    description: 'services - liveness: when every backend is terminating, terminating backends take new connections (as Maglev picks among them)',
    setup: aTerminating,
    input: [
      ...laterToA.map((sport) => from(tcpF(CLIENT, PAIR_VIP, { sport, dport: 80 }))),
      change(bothTerminating),
      ...[...laterToA, ...laterToB].map((sport) => from(tcpF(CLIENT, PAIR_VIP, { sport: sport + 1000, dport: 80 }))),
    ],
    expect: [
      ...laterToA.map((sport) => translated('pass_default', tcpF(CLIENT, PAIR_B, { sport, dport: 8080 }))),
      ...[...laterToA, ...laterToB].map((sport) => {
        const be = pick(bothTerminating(BASE), tcpFlow(CLIENT, PAIR_VIP, sport + 1000, 80));
        return translated('pass_default', tcpF(CLIENT, be.ip, { sport: sport + 1000, dport: 8080 }));
      }),
    ],
  },
];

// -- session affinity --

const stickyFlow = { src: CLIENT, dst: STICKY_VIP, protocol: 'TCP' as const, dport: 80 };
const sticky0 = pick(BASE, tcpFlow(CLIENT, STICKY_VIP, 43000, 80));
/** Connections Maglev alone would send elsewhere: affinity must hold them. */
const elsewhere = sportsTo(BASE, stickyFlow, sticky0.pod, 4, 43001, true);
const withWebD = withPod(BASE, pod('x', 'web-d', 'n2', WEB_D, { app: 'web' }, { ports: [http(8080)] }));
/** After web-d joins: connections Maglev would now send to web-d. */
const toWebD = sportsTo(withWebD, stickyFlow, 'x/web-d', 3, 43100);
/** Another client is not bound by the first one's affinity. */
const friend0 = sportsTo(BASE, { ...stickyFlow, src: FRIEND }, sticky0.pod, 1, 43000, true)[0]!;
const friendBe = pick(BASE, tcpFlow(FRIEND, STICKY_VIP, friend0, 80));

const AFFINITY_CASES: Case[] = [
  {
    description: "services - ClientIP affinity: a client's new connections (other source ports) all go to its first backend, also after a backend is added; another client picks its own",
    setup: BASE,
    input: [
      from(tcpF(CLIENT, STICKY_VIP, { sport: 43000, dport: 80 })),
      ...elsewhere.map((sport) => from(tcpF(CLIENT, STICKY_VIP, { sport, dport: 80 }))),
      from(tcpF(FRIEND, STICKY_VIP, { sport: friend0, dport: 80 })),
      change(() => withWebD),
      ...toWebD.map((sport) => from(tcpF(CLIENT, STICKY_VIP, { sport, dport: 80 }))),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, sticky0.ip, { sport: 43000, dport: sticky0.port })),
      ...elsewhere.map((sport) => translated('pass_default', tcpF(CLIENT, sticky0.ip, { sport, dport: sticky0.port }))),
      translated('pass_default', tcpF(FRIEND, friendBe.ip, { sport: friend0, dport: friendBe.port })),
      ...toWebD.map((sport) => translated('pass_default', tcpF(CLIENT, sticky0.ip, { sport, dport: sticky0.port }))),
    ],
  },
];

/** x/local with ClientIP affinity and a local endpoint (far-b) besides the remote one (far-a). */
const stickyLocal = serviceChanged(withFarB, 'local', { sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 10800 });
/** A NodePort connection that goes to the remote endpoint (the NodePort from a pod uses the cluster's endpoints). */
const [npToFarA] = sportsTo(stickyLocal, { src: CLIENT, dst: N1, protocol: 'TCP', dport: 30081 }, 'x/far-a', 1, 45100);

AFFINITY_CASES.push({
  description: "services - ClientIP affinity stays within a frontend's endpoints: affinity to a remote endpoint, made through the NodePort, never takes a ClusterIP connection past internalTrafficPolicy Local",
  setup: stickyLocal,
  input: [from(tcpF(CLIENT, N1, { sport: npToFarA!, dport: 30081 })), from(tcpF(CLIENT, LOCAL_VIP, { sport: 45200, dport: 80 }))],
  expect: [translated('pass_default', tcpF(CLIENT, FAR_A, { sport: npToFarA!, dport: 8080 })), translated('pass_default', tcpF(CLIENT, FAR_B, { sport: 45200, dport: 8080 }))],
});

/** Two local and one remote pod behind an internalTrafficPolicy Local ClusterIP with a 1 s ClientIP affinity. */
const NEAR_VIP = '10.244.240.19';
const shortSticky: SvcCluster = {
  ...BASE,
  pods: [
    ...BASE.pods,
    pod('x', 'near-a', 'n1', '10.244.1.50', { app: 'near' }),
    pod('x', 'near-b', 'n1', '10.244.1.51', { app: 'near' }),
    pod('x', 'near-c', 'n2', '10.244.2.51', { app: 'near' }),
  ],
  services: [
    ...BASE.services,
    service('x', 'near', NEAR_VIP, { app: 'near' }, [{ port: 80, targetPort: 8080, id: 15 }], {
      internalTrafficPolicy: 'Local',
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeoutSeconds: 1,
    }),
  ],
};
const near0 = pick(shortSticky, tcpFlow(CLIENT, NEAR_VIP, 43000, 80));
const [nearS1, nearS2, nearS3] = sportsTo(shortSticky, { src: CLIENT, dst: NEAR_VIP, protocol: 'TCP', dport: 80 }, near0.pod, 3, 43001, true);
const nearMoved = pick(shortSticky, tcpFlow(CLIENT, NEAR_VIP, nearS3!, 80));

// -- NodePort from a pod --

const np1 = pick(BASE, tcpFlow(CLIENT, N1, 44000, 30080));
const np2 = pick(BASE, tcpFlow(CLIENT, N2, 44001, 30080));

const NODEPORT_CASES: Case[] = [
  {
    description: "services - NodePort from a pod: its own node's address and another node's, on the nodePort, are translated like the ClusterIP; replies come from that address and port",
    setup: BASE,
    input: [
      from(tcpF(CLIENT, N1, { sport: 44000, dport: 30080 })),
      to(tcpF(np1.ip, CLIENT, { sport: np1.port, dport: 44000, flags: 'SA', seq: 3000, ack: 1001 })),
      from(tcpF(CLIENT, N2, { sport: 44001, dport: 30080 })),
      to(tcpF(np2.ip, CLIENT, { sport: np2.port, dport: 44001, flags: 'SA', seq: 3000, ack: 1001 })),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, np1.ip, { sport: 44000, dport: np1.port })),
      translated('pass_reply', tcpF(N1, CLIENT, { sport: 30080, dport: 44000, flags: 'SA', seq: 3000, ack: 1001 })),
      translated('pass_default', tcpF(CLIENT, np2.ip, { sport: 44001, dport: np2.port })),
      translated('pass_reply', tcpF(N2, CLIENT, { sport: 30080, dport: 44001, flags: 'SA', seq: 3000, ack: 1001 })),
    ],
  },
  {
    description: "services - NodePort from a pod to another node's address that an ipBlock covers (the address has a class of its own then): still a node's, still translated",
    setup: { ...BASE, policies: [netpol('x', 'from-nodes', { podSelector: { matchLabels: { app: 'guard' }, matchExpressions: [] }, ingress: [{ from: [{ ipBlock: { cidr: '10.250.0.0/24', except: [] } }] }] })] },
    input: [from(tcpF(CLIENT, N2, { sport: 44001, dport: 30080 })), to(tcpF(np2.ip, CLIENT, { sport: np2.port, dport: 44001, flags: 'SA', seq: 3000, ack: 1001 }))],
    expect: [
      translated('pass_default', tcpF(CLIENT, np2.ip, { sport: 44001, dport: np2.port })),
      translated('pass_reply', tcpF(N2, CLIENT, { sport: 30080, dport: 44001, flags: 'SA', seq: 3000, ack: 1001 })),
    ],
  },
  {
    description: 'services - NodePort from a pod: the nodePort on an address that is no node, on the ClusterIP, or for another protocol, is not translated',
    setup: BASE,
    input: [from(tcpF(CLIENT, WORLD, { sport: 44002, dport: 30080 })), from(tcpF(CLIENT, WEB_VIP, { sport: 44003, dport: 30080 })), from(udpF(CLIENT, N1, 44004, 30080))],
    expect: [unchanged('pass_default'), unchanged('pass_default'), unchanged('pass_default')],
  },
];

// -- from the uplink: delivery into local pods, external connections --

const [toWebB] = sportsTo(BASE, { src: CLIENT, dst: WEB_VIP, protocol: 'TCP', dport: 80 }, 'x/web-b', 1, 46000);
const [extToWebA] = sportsTo(BASE, { src: WORLD, dst: N1, protocol: 'TCP', dport: 30080 }, 'x/web-a', 1, 46100);
const UPLINK_IN = { hook: 'uplink', direction: 'ingress' } as const;

const UPLINK_CASES: Case[] = [
  {
    description: "services - from the uplink, a packet for a local pod is judged there as the pod's ingress (counted so) and handed into it one hop later (TTL 63, IPv4 checksum right); a remote backend's reply gets the ClusterIP back on the way",
    setup: BASE,
    input: [
      from(tcpF(CLIENT, WEB_VIP, { sport: toWebB!, dport: 80 })),
      uplink(tcpF(WEB_B, CLIENT, { sport: 8081, dport: toWebB!, flags: 'SA', seq: 5000, ack: 1001 })),
      uplink(tcpF(FAR_A, FRIEND, { sport: 46010, dport: 7 })),
    ],
    expect: [
      translated('pass_default', tcpF(CLIENT, WEB_B, { sport: toWebB!, dport: 8081 })),
      delivered('pass_reply', tcpF(WEB_VIP, CLIENT, { sport: 80, dport: toWebB!, flags: 'SA', seq: 5000, ack: 1001, ttl: 63 })),
      delivered('pass_default', tcpF(FAR_A, FRIEND, { sport: 46010, dport: 7, ttl: 63 })),
    ],
  },
  {
    description: "services - from the uplink, the pod's policy holds: a peer it does not admit is dropped at the uplink; a packet whose TTL runs out goes the stack's way untouched; a new connection from this node's own address or one of its pods' is a spoof, dropped",
    setup: withPolicies(BASE, [guardFromFriend]),
    input: [
      uplink(tcpF(FAR_A, GUARD, { sport: 46020, dport: 8080 })),
      uplink(tcpF(FAR_A, FRIEND, { sport: 46021, dport: 7, ttl: 1 })),
      uplink(tcpF(N1, GUARD, { sport: 46022, dport: 8080 })),
      uplink(tcpF(FRIEND, GUARD, { sport: 46023, dport: 8080 })),
      uplink(tcpF(N2, FRIEND, { sport: 46024, dport: 7 })),
    ],
    expect: [
      unchanged('drop_policy_default'),
      { reason: 'pass_uplink', at: UPLINK_IN },
      unchanged('drop_invalid_source'),
      unchanged('drop_invalid_source'),
      // Another node's address is no spoof.
      delivered('pass_default', tcpF(N2, FRIEND, { sport: 46024, dport: 7, ttl: 63 })),
    ],
  },
  {
    description: "services - NodePort from outside to a local backend: DNAT at the uplink keeping the client's address; the backend's reply gets the node address and nodePort back in tp_from_pod and is sent out of the uplink",
    setup: BASE,
    input: [
      uplink(tcpF(WORLD, N1, { sport: extToWebA!, dport: 30080 })),
      to(tcpF(WORLD, WEB_A, { sport: extToWebA!, dport: 8080 })),
      from(tcpF(WEB_A, WORLD, { sport: 8080, dport: extToWebA!, flags: 'SA', seq: 7000, ack: 1001 })),
      from(tcpF(WEB_A, FRIEND, { sport: 8080, dport: 46030, flags: 'SA', seq: 7000, ack: 1001 })),
    ],
    expect: [
      { reason: 'pass_external', out: tcpF(WORLD, WEB_A, { sport: extToWebA!, dport: 8080 }), at: UPLINK_IN },
      unchanged('pass_default'),
      { reason: 'pass_reply', verdict: 'redirect', out: tcpF(N1, WORLD, { sport: 30080, dport: extToWebA!, flags: 'SA', seq: 7000, ack: 1001 }) },
      // No connection: the pod's own new egress, untranslated.
      unchanged('pass_default'),
    ],
  },
];

// ---- running a case ----

let dp: NodeDatapath;
beforeAll(() => {
  dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
});
afterAll(() => dp?.close());

const PROGRAM: Record<Hook, string> = { to_pod: PROGRAM_NAMES.tp_to_pod, from_pod: PROGRAM_NAMES.tp_from_pod, from_uplink: PROGRAM_NAMES.tp_from_uplink };
const bytesOf = (b: Bytes) => (Buffer.isBuffer(b) ? b : b.build());

function counted(before: ReasonCount[], after: ReasonCount[]): ReasonCount[] {
  const key = (r: ReasonCount) => `${r.hook}/${r.direction}/${r.reason}`;
  const was = new Map(before.map((r) => [key(r), r]));
  return after
    .map((r) => ({ ...r, packets: r.packets - (was.get(key(r))?.packets ?? 0n), bytes: r.bytes - (was.get(key(r))?.bytes ?? 0n) }))
    .filter((r) => r.packets !== 0n);
}

const VERDICT_OF: Record<number, Verdict> = { [TC_ACT.UNSPEC]: 'pass', [TC_ACT.SHOT]: 'drop', [TC_ACT.REDIRECT]: 'redirect' };

/** A frame as the assertion shows it: decoded fields first, then every byte. */
const shown = (b: Buffer) => ({ fields: readFrame(b), bytes: b.toString('hex') });

/** Runs case c on `on`: the shared datapath, or one opened with other rodata (short lifetimes). */
async function runCase(c: Case, on: NodeDatapath = dp): Promise<void> {
  clearState(on);
  const ids = new BackendIds();
  let cluster = c.setup;
  loadCluster(on, cluster, ids);
  // This node's uplink (where external replies leave) and address; the test run's skbs all sit on ifindex 1.
  updateConfig(on.config, { uplink_ifindex: 1, node_addr4: Buffer.from(N1.split('.').map(Number)) });
  const packets = c.input.filter((s): s is PacketStep => 'hook' in s);
  expect(packets.length, 'one expectation per packet').toBe(c.expect.length);
  let n = 0;
  for (const step of c.input) {
    if ('change' in step) {
      cluster = step.change(cluster);
      loadCluster(on, cluster, ids);
      continue;
    }
    if ('pauseMs' in step) {
      await sleep(step.pauseMs);
      continue;
    }
    const want = c.expect[n]!;
    const frame = bytesOf(step.send);
    const before = on.readMetrics();
    const r = testRun(on.obj.program(PROGRAM[step.hook]), frame);
    const rows = counted(before, on.readMetrics());
    const where = `packet ${n + 1} (${step.hook})`;
    const verdict = want.verdict ?? (want.reason.startsWith('pass_') ? 'pass' : want.reason === 'reject_no_backend' ? 'redirect' : 'drop');
    expect(
      { reason: rows.length === 1 ? reasonName(rows[0]!.reason) : `${rows.length} reasons counted`, verdict: VERDICT_OF[r.retval] ?? `retval ${r.retval}`, counted: rows.map(({ hook, direction, bytes }) => ({ hook, direction, bytes })) },
      where,
    ).toEqual({ reason: want.reason, verdict, counted: [{ ...(want.at ?? { hook: 'pod', direction: step.hook === 'from_pod' ? 'egress' : 'ingress' }), bytes: BigInt(frame.length) }] });
    expect(shown(r.data), `${where}: bytes out`).toEqual(shown(want.out ? bytesOf(want.out) : frame));
    n++;
  }
}

// -- IPv6, and a dual-stack service --

// x/web6-a on n1 and x/web6-b on n2 have both families; x/dual selects them with a
// ClusterIP per family, x/empty6 selects nobody.
const CLIENT6 = 'fd00:10:244:1::a'; // x/client's IPv6 address (it is added to the pod below)
const WEB6_A = ['10.244.1.70', 'fd00:10:244:1::46'];
const WEB6_B = ['10.244.2.70', 'fd00:10:244:2::46'];
const DUAL_VIP4 = '10.244.240.20';
const DUAL_VIP6 = 'fd00:10:96::14';
const EMPTY6_VIP = 'fd00:10:96::15';
const DUAL: SvcCluster = {
  ...BASE,
  nodes: BASE.nodes.map((n, i) => ({ ...n, podCIDRs: [...n.podCIDRs, `fd00:10:244:${i + 1}::/64`] })),
  pods: [
    ...BASE.pods.map((p) => (p.name === 'client' ? { ...p, ips: [CLIENT, CLIENT6] } : p)),
    { ...pod('x', 'web6-a', 'n1', WEB6_A[0]!, { app: 'web6' }, { ports: [http(8080), dns] }), ips: WEB6_A },
    { ...pod('x', 'web6-b', 'n2', WEB6_B[0]!, { app: 'web6' }, { ports: [http(8081), dns] }), ips: WEB6_B },
  ],
  services: [
    ...BASE.services,
    service(
      'x',
      'dual',
      DUAL_VIP4,
      { app: 'web6' },
      [
        { name: 'http', port: 80, targetPort: 'http', id: 21 },
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns', id: 22 },
      ],
      { clusterIPs: [DUAL_VIP4, DUAL_VIP6], ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' },
    ),
    service('x', 'empty6', EMPTY6_VIP, { app: 'nobody' }, [{ name: 'http', port: 80, id: 23 }, { name: 'dns', port: 53, protocol: 'UDP', id: 24 }], { ipFamilies: ['IPv6'] }),
  ],
};
const tcp6 = (src: string, dst: string, seg: TcpSeg): Frame => {
  const f = eth().ipv6({ src, dst }).tcp({ sport: seg.sport, dport: seg.dport, flags: seg.flags ?? 'S', seq: seg.seq ?? 1000, ack: seg.ack ?? 0 });
  return seg.payload === undefined ? f : f.payload(seg.payload);
};
const udp6 = (src: string, dst: string, sport: number, dport: number, payload: number | Buffer = 8): Frame => eth().ipv6({ src, dst }).udp({ sport, dport }).payload(payload);
/** An ICMPv6 error (type 2 code 0: packet too big, by default) from `src` to `dst` quoting the IPv6 packet of `quoted`. */
const icmp6ErrF = (src: string, dst: string, quoted: Frame, type = 2, code = 0): Frame =>
  eth().ipv6({ src, dst }).icmpv6({ type, code, id: 0, seq: type === 2 ? 1280 : 0 }).payload(quoted.build().subarray(14));
const ROUTER6 = '2001:db8::fe';
const web6 = pick(DUAL, tcpFlow(CLIENT6, DUAL_VIP6, 41000, 80));
const web4 = pick(DUAL, tcpFlow(CLIENT, DUAL_VIP4, 41000, 80));
const dns6 = pick(DUAL, udpFlow(CLIENT6, DUAL_VIP6, 41001, 53));
const spread6 = Array.from({ length: 10 }, (_, i) => 41100 + i).map((sport) => ({ sport, be: pick(DUAL, tcpFlow(CLIENT6, DUAL_VIP6, sport, 80)) }));

const IPV6_CASES: Case[] = [
  {
    description: 'services - IPv6 ClusterIP, TCP: the SYN goes to the IPv6 backend Maglev picks (address, port, TCP checksum over the IPv6 pseudo-header); the reply comes from the ClusterIP',
    setup: DUAL,
    input: [
      from(tcp6(CLIENT6, DUAL_VIP6, { sport: 41000, dport: 80 })),
      to(tcp6(web6.ip, CLIENT6, { sport: web6.port, dport: 41000, flags: 'SA', seq: 5000, ack: 1001 })),
      from(tcp6(CLIENT6, DUAL_VIP6, { sport: 41000, dport: 80, flags: 'PA', seq: 1001, ack: 5001, payload: 30 })),
    ],
    expect: [
      translated('pass_default', tcp6(CLIENT6, web6.ip, { sport: 41000, dport: web6.port })),
      translated('pass_reply', tcp6(DUAL_VIP6, CLIENT6, { sport: 80, dport: 41000, flags: 'SA', seq: 5000, ack: 1001 })),
      translated('pass_established', tcp6(CLIENT6, web6.ip, { sport: 41000, dport: web6.port, flags: 'PA', seq: 1001, ack: 5001, payload: 30 })),
    ],
  },
  {
    description: 'services - IPv6 ClusterIP: new connections spread over the IPv6 addresses of the backends as the model picks them',
    setup: DUAL,
    input: spread6.map(({ sport }) => from(tcp6(CLIENT6, DUAL_VIP6, { sport, dport: 80 }))),
    expect: spread6.map(({ sport, be }) => translated('pass_default', tcp6(CLIENT6, be.ip, { sport, dport: be.port }))),
  },
  {
    description: 'services - IPv6 ClusterIP, UDP: the datagram goes to the backend, the answer comes from the ClusterIP (UDP checksum mandatory in IPv6, rewritten)',
    setup: DUAL,
    input: [from(udp6(CLIENT6, DUAL_VIP6, 41001, 53)), to(udp6(dns6.ip, CLIENT6, dns6.port, 41001, 40))],
    expect: [translated('pass_default', udp6(CLIENT6, dns6.ip, 41001, dns6.port)), translated('pass_reply', udp6(DUAL_VIP6, CLIENT6, 53, 41001, 40))],
  },
  {
    description: 'services - a dual-stack service: its IPv4 ClusterIP picks among IPv4 addresses, its IPv6 one among IPv6 addresses, of the same pods',
    setup: DUAL,
    input: [from(tcpF(CLIENT, DUAL_VIP4, { sport: 41000, dport: 80 })), from(tcp6(CLIENT6, DUAL_VIP6, { sport: 41000, dport: 80 }))],
    expect: [translated('pass_default', tcpF(CLIENT, web4.ip, { sport: 41000, dport: web4.port })), translated('pass_default', tcp6(CLIENT6, web6.ip, { sport: 41000, dport: web6.port }))],
  },
  {
    description: "services - an ICMPv6 error about an IPv6 ClusterIP connection reaches its client translated back: a router's packet too big quotes the ClusterIP again; the backend's port unreachable comes from the ClusterIP",
    setup: DUAL,
    input: [
      from(tcp6(CLIENT6, DUAL_VIP6, { sport: 41000, dport: 80 })),
      to(icmp6ErrF(ROUTER6, CLIENT6, tcp6(CLIENT6, web6.ip, { sport: 41000, dport: web6.port }))),
      from(udp6(CLIENT6, DUAL_VIP6, 41001, 53)),
      to(icmp6ErrF(dns6.ip, CLIENT6, udp6(CLIENT6, dns6.ip, 41001, dns6.port), 1, 4)),
    ],
    expect: [
      translated('pass_default', tcp6(CLIENT6, web6.ip, { sport: 41000, dport: web6.port })),
      translated('pass_related', icmp6ErrF(ROUTER6, CLIENT6, tcp6(CLIENT6, DUAL_VIP6, { sport: 41000, dport: 80 }))),
      translated('pass_default', udp6(CLIENT6, dns6.ip, 41001, dns6.port)),
      translated('pass_related', icmp6ErrF(DUAL_VIP6, CLIENT6, udp6(CLIENT6, DUAL_VIP6, 41001, 53), 1, 4)),
    ],
  },
  {
    description: "services - the client's ICMPv6 error about a reply it got from an IPv6 ClusterIP goes to the backend as the backend sent it",
    setup: DUAL,
    input: [
      from(udp6(CLIENT6, DUAL_VIP6, 41001, 53)),
      to(udp6(dns6.ip, CLIENT6, dns6.port, 41001)),
      from(icmp6ErrF(CLIENT6, DUAL_VIP6, udp6(DUAL_VIP6, CLIENT6, 53, 41001), 1, 4)),
    ],
    expect: [
      translated('pass_default', udp6(CLIENT6, dns6.ip, 41001, dns6.port)),
      translated('pass_reply', udp6(DUAL_VIP6, CLIENT6, 53, 41001)),
      translated('pass_related', icmp6ErrF(CLIENT6, dns6.ip, udp6(dns6.ip, CLIENT6, dns6.port, 41001), 1, 4)),
    ],
  },
  {
    description: 'services - an IPv6 service without backends refuses: a TCP RST and an ICMPv6 port unreachable come back from the ClusterIP',
    setup: DUAL,
    input: [from(tcp6(CLIENT6, EMPTY6_VIP, { sport: 41002, dport: 80, seq: 7000 })), from(udp6(CLIENT6, EMPTY6_VIP, 41003, 53))],
    expect: [
      { reason: 'reject_no_backend', out: eth({ src: MAC_PEER, dst: MAC_POD }).ipv6({ src: EMPTY6_VIP, dst: CLIENT6, hopLimit: 64 }).tcp({ sport: 80, dport: 41002, flags: 'RA', seq: 0, ack: 7001, window: 0 }).unpadded() },
      {
        reason: 'reject_no_backend',
        out: eth({ src: MAC_PEER, dst: MAC_POD })
          .ipv6({ src: EMPTY6_VIP, dst: CLIENT6, hopLimit: 64 })
          .icmpv6({ type: 1, code: 4, id: 0, seq: 0 })
          .payload(Buffer.from(udp6(CLIENT6, EMPTY6_VIP, 41003, 53).build().subarray(14)))
          .unpadded(),
      },
    ],
  },
];

const TABLES: [string, Case[]][] = [
  ['services - translation', TRANSLATION_CASES],
  ['services - refusal', REFUSAL_CASES],
  ['services - traffic policy', TRAFFIC_POLICY_CASES],
  ['services - hairpin and policy', POLICY_CASES],
  ['services - liveness', LIVENESS_CASES],
  ['services - affinity', AFFINITY_CASES],
  ['services - nodeport', NODEPORT_CASES],
  ['services - uplink', UPLINK_CASES],
  ['services - IPv6', IPV6_CASES],
];

for (const [area, cases] of TABLES) {
  describe(area, () => {
    for (const c of cases) it(c.description, () => runCase(c));
  });
}

describe('services - affinity timeout', () => {
  // About 2.7 s of pauses: the shortest timeout a Service can have is 1 s.
  it('services - ClientIP affinity with a 1 s timeout: traffic of an affine connection refreshes it, and once it lapses a new connection goes where Maglev sends it', async () => {
    expect(nearMoved.node, 'Local: only local endpoints').toBe('n1');
    await runCase({
      description: 'timeout',
      setup: shortSticky,
      input: [
        from(tcpF(CLIENT, NEAR_VIP, { sport: 43000, dport: 80 })),
        from(tcpF(CLIENT, NEAR_VIP, { sport: nearS1!, dport: 80 })),
        // A segment more than 1 s (tp_ct_refresh_ns) after the connection began moves its
        // conntrack expiry, and so refreshes the client's affinity.
        { pauseMs: 1100 },
        from(tcpF(CLIENT, NEAR_VIP, { sport: 43000, dport: 80, flags: 'A', seq: 1001, ack: 1 })),
        // 1.5 s after the first connection, 0.4 s after the refresh: still affine.
        { pauseMs: 400 },
        from(tcpF(CLIENT, NEAR_VIP, { sport: nearS2!, dport: 80 })),
        // The timeout counts from the last connection or refresh; the coarse clock ticks every few ms.
        { pauseMs: 1200 },
        from(tcpF(CLIENT, NEAR_VIP, { sport: nearS3!, dport: 80 })),
      ],
      expect: [
        translated('pass_default', tcpF(CLIENT, near0.ip, { sport: 43000, dport: 8080 })),
        translated('pass_default', tcpF(CLIENT, near0.ip, { sport: nearS1!, dport: 8080 })),
        translated('pass_established', tcpF(CLIENT, near0.ip, { sport: 43000, dport: 8080, flags: 'A', seq: 1001, ack: 1 })),
        translated('pass_default', tcpF(CLIENT, near0.ip, { sport: nearS2!, dport: 8080 })),
        translated('pass_default', tcpF(CLIENT, nearMoved.ip, { sport: nearS3!, dport: 8080 })),
      ],
    });
  });
});

// -- a service connection's two entries over its life, with short lifetimes set through rodata --

const MS = 1_000_000n;
/** SYN-only, closing and UDP lifetimes of 300 ms; the cases pause 500 ms (the UDP one 150 ms between datagrams). */
const SHORT_LIFETIMES = {
  tp_ct_lifetime_tcp_syn_ns: 300n * MS,
  tp_ct_lifetime_tcp_ns: 60_000n * MS,
  tp_ct_lifetime_tcp_closing_ns: 300n * MS,
  tp_ct_lifetime_other_ns: 300n * MS,
  tp_ct_refresh_ns: 1n * MS,
};
const PAUSE = { pauseMs: 500 };

/** A segment's flags, numbers and payload; the connection gives its ports. */
type Seg = Omit<TcpSeg, 'sport' | 'dport'>;
/** One ClusterIP connection of x/client from `sport` to x/web: its segments as sent, and as translated. */
function webConn(sport: number) {
  const be = pick(BASE, tcpFlow(CLIENT, WEB_VIP, sport, 80));
  const out = (seg: Seg) => tcpF(CLIENT, WEB_VIP, { ...seg, sport, dport: 80 });
  const outX = (seg: Seg) => tcpF(CLIENT, be.ip, { ...seg, sport, dport: be.port });
  const back = (seg: Seg) => tcpF(be.ip, CLIENT, { ...seg, sport: be.port, dport: sport });
  const backX = (seg: Seg) => tcpF(WEB_VIP, CLIENT, { ...seg, sport: 80, dport: sport });
  const syn: Seg = { flags: 'S', seq: 1000 };
  const synAck: Seg = { flags: 'SA', seq: 5000, ack: 1001 };
  const ack: Seg = { flags: 'A', seq: 1001, ack: 5001 };
  /** The handshake, each packet translated. */
  const opened: [Step[], Outcome[]] = [
    [from(out(syn)), to(back(synAck)), from(out(ack))],
    [translated('pass_default', outX(syn)), translated('pass_reply', backX(synAck)), translated('pass_established', outX(ack))],
  ];
  return { sport, be, out, outX, back, backX, opened };
}

describe('services - conntrack of a service connection', () => {
  let short: NodeDatapath;
  beforeAll(() => {
    short = NodeDatapath.open({ objectPath: OBJECT_PATH, rodata: SHORT_LIFETIMES });
  });
  afterAll(() => short?.close());

  /** Each case: one connection from its own port, the handshake, then what follows it (steps and outcomes). */
  const TCP_CASES: { title: string; then: (c: ReturnType<typeof webConn>) => [Step[], Outcome[]] }[] = [
    {
      title: 'an answered connection outlives the SYN lifetime both ways: the reply tells the DNAT entry through its twin',
      then: (c) => [
        [PAUSE, from(c.out({ flags: 'PA', seq: 1001, ack: 5001, payload: 10 })), to(c.back({ flags: 'PA', seq: 5001, ack: 1011, payload: 10 }))],
        [translated('pass_established', c.outX({ flags: 'PA', seq: 1001, ack: 5001, payload: 10 })), translated('pass_reply', c.backX({ flags: 'PA', seq: 5001, ack: 1011, payload: 10 }))],
      ],
    },
    {
      title: "a SYN from a closed service connection's client port straight to its backend opens a plain connection: the client's FIN closed the RNAT twin too",
      then: (c) => [
        [
          from(c.out({ flags: 'FA', seq: 1001, ack: 5001 })),
          from(tcpF(CLIENT, c.be.ip, { sport: c.sport, dport: c.be.port, flags: 'S', seq: 9000 })),
          to(tcpF(c.be.ip, CLIENT, { sport: c.be.port, dport: c.sport, flags: 'SA', seq: 7000, ack: 9001 })),
        ],
        [translated('pass_established', c.outX({ flags: 'FA', seq: 1001, ack: 5001 })), unchanged('pass_default'), unchanged('pass_reply')],
      ],
    },
  ];
  TCP_CASES.forEach(({ title, then }, i) =>
    it(`services - conntrack: ${title}`, async () => {
      const c = webConn(44000 + i);
      const [steps, outcomes] = then(c);
      await runCase({ description: title, setup: BASE, input: [...c.opened[0], ...steps], expect: [...c.opened[1], ...outcomes] }, short);
    }),
  );

  it("services - conntrack: a UDP flow's datagrams keep its reply entry alive too: the backend's first answer, later than the UDP lifetime, still comes from the ClusterIP", async () => {
    const sport = 44100;
    const be = pick(BASE, udpFlow(CLIENT, WEB_VIP, sport, 53));
    const q = () => from(udpF(CLIENT, WEB_VIP, sport, 53));
    const qX = () => translated('pass_established', udpF(CLIENT, be.ip, sport, be.port));
    // Five datagrams 100 ms apart: the answer comes 400 ms after the first, past the 300 ms
    // UDP lifetime, while no gap comes near it (200 ms of slack for a loaded machine's timers).
    const step = { pauseMs: 100 };
    await runCase(
      {
        description: 'udp one way',
        setup: BASE,
        input: [q(), step, q(), step, q(), step, q(), step, q(), to(udpF(be.ip, CLIENT, be.port, sport, 40))],
        expect: [translated('pass_default', udpF(CLIENT, be.ip, sport, be.port)), qX(), qX(), qX(), qX(), translated('pass_reply', udpF(WEB_VIP, CLIENT, 53, sport, 40))],
      },
      short,
    );
  });
});

describe('services - fixtures', () => {
  it('services - the fixtures exercise what they claim: several backends are picked, the moved flows had somewhere to move', () => {
    expect(new Set(spread.map((s) => s.be.pod)).size, 'the spread case reaches every web backend').toBe(3);
    expect(dnsBe.pod === 'x/web-c' || dnsBe2.pod === 'x/web-c', 'x/web-c has no "dns" port').toBe(false);
    expect(toWebD.length).toBe(3);
    expect(new Set([...laterToA, ...laterToB].map((s) => pick(bothTerminating(BASE), tcpFlow(CLIENT, PAIR_VIP, s + 1000, 80)).pod)).size).toBe(2);
    expect(farFromPod.pod).toBe('x/far-a');
    expect([WEB_A, WEB_B, WEB_C]).toContain(web.ip);
  });
});
