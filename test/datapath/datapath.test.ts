// Verdicts of the shipped datapath on synthesized packets. Loads build/tcplane.bpf.o (as
// the agent does, no pinning), fills its maps through the agent's compiler and codecs,
// runs each frame through BPF_PROG_TEST_RUN and checks the verdict, the one reason the
// metrics count, and that the frame comes out unchanged. Packets a policy decides are
// also checked against the independent model (test/helpers/model.ts).
// Needs root (BPF_PROG_TEST_RUN) and `make` first.
//
// BPF_PROG_TEST_RUN attributes every skb to loopback (ifindex 1): endpoints under test
// sit on ifindex 1 and are told apart by endpoint id, which is what policy keys use.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BpfError } from '../../src/bpf/errors.js';
import { testRun, TC_ACT } from '../../src/bpf/testrun.js';
import { ipcidrKey } from '../../src/datapath/addr.js';
import { NodeDatapath, type ReasonCount } from '../../src/datapath/node-datapath.js';
import { reasonName } from '../../src/datapath/reasons.js';
import { PROGRAM_NAMES } from '../../src/gen/bpf-names.js';
import { compile } from '../../src/policy/compile.js';
import { parsePolicyText } from '../../src/policy/parse.js';
import type { IngressRule, NetworkPolicy } from '../../src/policy/types.js';
import { netpol } from '../helpers/cluster.js';
import { frameOf } from '../helpers/frames.js';
import {
  desiredInputOf,
  fragmentOf,
  icmpErrorFor,
  fragmentsOf,
  PolicyModel,
  reply,
  type Hook,
  type Lifetimes,
  type ModelCluster,
  type ModelPacket,
  type ModelPod,
  type ReasonLabel,
  DEFAULT_LIFETIMES,
} from '../helpers/model.js';
import { eth, IPPROTO, type Frame } from '../helpers/packet.js';
import { OBJECT_PATH } from '../helpers/paths.js';
import { sctpF } from '../helpers/sctp.js';

// ---- the cluster every case starts from ----

const A = '10.244.1.10'; // x/a, local: the pod most cases send to
const A6 = 'fd00:244:1::10';
const B = '10.244.1.11'; // x/b, local
const FAR = '10.244.1.20'; // x/far, local but on another veth (ifindex 999)
const XC = '10.244.2.12'; // x/c, on n2
const XC6 = 'fd00:244:2::12';
const XC2 = '10.244.2.15'; // x/c2: the labels of x/c (its identity), another address, its own port numbers
const YB = '10.244.2.11'; // y/b: the labels of x/b, in another namespace
const YC = '10.244.2.10'; // y/c
const YC6 = 'fd00:244:2::10';
const YD = '10.244.2.14'; // y/d
const ZD = '10.244.2.13'; // z/d
const HOST = '10.250.0.10'; // this node (reserved:host)
const REMOTE_NODE = '10.250.0.11'; // n2
const UNMANAGED = '10.244.2.99'; // inside n2's pod CIDR, no pod
const WORLD = '192.0.2.1';
const WORLD6 = '2001:db8::1';

const ns = (name: string, labels: Record<string, string>) => ({ name, labels: { 'kubernetes.io/metadata.name': name, ...labels } });
const pod = (namespace: string, name: string, node: string, labels: Record<string, string>, ips: string[], ifindex?: number): ModelPod => ({
  namespace,
  name,
  node,
  labels,
  ips,
  ...(ifindex === undefined ? {} : { ifindex }),
});

const BASE: ModelCluster = {
  localNode: 'n1',
  nodes: [
    { name: 'n1', addresses: [HOST], podCIDRs: ['10.244.1.0/24'] },
    { name: 'n2', addresses: [REMOTE_NODE], podCIDRs: ['10.244.2.0/24'] },
  ],
  namespaces: [ns('x', { team: 'a' }), ns('y', { team: 'b' }), ns('z', { team: 'a' })],
  pods: [
    {
      ...pod('x', 'a', 'n1', { app: 'a' }, [A, A6]),
      ports: [
        { name: 'web', port: 8080, protocol: 'TCP' },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    },
    pod('x', 'b', 'n1', { app: 'b' }, [B]),
    pod('x', 'far', 'n1', { app: 'far' }, [FAR], 999),
    { ...pod('x', 'c', 'n2', { app: 'c' }, [XC, XC6]), ports: [{ name: 'web', port: 80, protocol: 'TCP' }] },
    { ...pod('x', 'c2', 'n2', { app: 'c' }, [XC2]), ports: [{ name: 'web', port: 8080, protocol: 'TCP' }] },
    pod('y', 'b', 'n2', { app: 'b' }, [YB]),
    pod('y', 'c', 'n2', { app: 'c', role: 'db' }, [YC, YC6]),
    pod('y', 'd', 'n2', { app: 'd' }, [YD]),
    pod('z', 'd', 'n2', { app: 'd' }, [ZD]),
  ],
  policies: [],
};

// ---- policies ----

const denyAllX = netpol('x', 'deny-all');
/** A policy in x selecting x/a with these rules. */
const toA = (name: string, ingress: IngressRule[]): NetworkPolicy => netpol('x', name, { podSelector: { matchLabels: { app: 'a' }, matchExpressions: [] }, ingress });
const sel = (matchLabels: Record<string, string>) => ({ matchLabels, matchExpressions: [] });

// ---- packets ----

const SYN = 0x02;
const ACK = 0x10;
const FIN_ACK = 0x11;
const v6 = (ip: string) => ip.includes(':');
const tcp = (src: string, dst: string, dport: number, sport = 40000, tcpFlags = SYN): ModelPacket => ({ src, dst, protocol: 'TCP', sport, dport, tcpFlags });
const udp = (src: string, dst: string, dport: number, sport = 40000): ModelPacket => ({ src, dst, protocol: 'UDP', sport, dport });
const ping = (src: string, dst: string, icmpId = 7): ModelPacket =>
  v6(src) ? { src, dst, protocol: 'ICMPv6', icmpType: 128, icmpId } : { src, dst, protocol: 'ICMP', icmpType: 8, icmpId };

// ---- cases ----

/** A packet the model also judges; `frame` replaces the plain frame of `packet` (IPv4 options, ext headers). */
interface PacketStep {
  hook: Hook;
  packet: ModelPacket;
  frame?: Frame;
}
/** A frame the model has no say on (not IP, malformed). */
interface RawStep {
  hook: Hook;
  raw: Frame;
}
/** Re-sync the maps with other policies; conntrack stays. */
interface PolicyStep {
  policies: NetworkPolicy[];
}
type Step = PacketStep | RawStep | PolicyStep;

interface Setup {
  policies?: NetworkPolicy[];
  /** Extra tp_ipcidr_v1 entries (CIDR → identity of a pod), written along with the compiler's output. */
  cidrs?: [cidr: string, pod: string][];
  /** false: the model does not know the extra CIDRs, so it is not consulted. */
  model?: boolean;
}

interface Case {
  description: string;
  setup: Setup;
  input: Step[];
  /** The reason of each packet step, in order; pass_* must return TC_ACT_UNSPEC, drop_* TC_ACT_SHOT. */
  expect: ReasonLabel[];
}

const toPod = (packet: ModelPacket, frame?: Frame): PacketStep => ({ hook: 'to_pod', packet, ...(frame ? { frame } : {}) });
const fromPod = (packet: ModelPacket, frame?: Frame): PacketStep => ({ hook: 'from_pod', packet, ...(frame ? { frame } : {}) });
/** A connection from the world to x/a:80 from `sport`, answered, then closed by the world's FIN: its entry lingers closing. */
const closedFromWorld = (sport: number): Step[] => [toPod(tcp(WORLD, A, 80, sport)), fromPod(reply(tcp(WORLD, A, 80, sport))), toPod(tcp(WORLD, A, 80, sport, FIN_ACK))];
const rawTo = (raw: Frame): RawStep => ({ hook: 'to_pod', raw });
const rawFrom = (raw: Frame): RawStep => ({ hook: 'from_pod', raw });

const DEFAULT_CASES: Case[] = [
  {
    description: 'default - a pod no policy selects admits TCP, UDP and ICMP from anywhere',
    setup: {},
    input: [toPod(tcp(WORLD, A, 80)), toPod(udp(YC, A, 53)), toPod(ping(UNMANAGED, A))],
    expect: ['pass_default', 'pass_default', 'pass_default'],
  },
  {
    description: 'default - a policy selecting other pods of the namespace leaves this one open',
    setup: { policies: [netpol('x', 'only-b', { podSelector: sel({ app: 'b' }) })] },
    input: [toPod(tcp(WORLD, A, 80)), toPod(tcp(WORLD, B, 80))],
    expect: ['pass_default', 'drop_policy_default'],
  },
  {
    description: 'default - a policy of another namespace does not isolate the pod',
    setup: { policies: [netpol('y', 'deny-all')] },
    input: [toPod(tcp(YC, A, 80))],
    expect: ['pass_default'],
  },
  {
    description: 'default - ingress isolation leaves egress open: an isolated pod still opens connections',
    setup: { policies: [denyAllX] },
    input: [fromPod(tcp(A, WORLD, 443)), fromPod(udp(A, YC, 53)), fromPod(ping(A, XC))],
    expect: ['pass_default', 'pass_default', 'pass_default'],
  },
];

const POLICY_CASES: Case[] = [
  {
    description: 'policy - egress: [] isolates what the pod sends; the replies to what it admits still pass',
    setup: { policies: [netpol('x', 'a-sends-nothing', { podSelector: sel({ app: 'a' }), policyTypes: ['Egress'] })] },
    // Its own node it always reaches (Kubernetes: traffic to and from it is always allowed).
    input: [fromPod(tcp(A, XC, 80)), fromPod(ping(A, WORLD)), toPod(tcp(XC, A, 80)), fromPod(tcp(A, XC, 40000, 80, SYN | ACK)), fromPod(udp(A, HOST, 53)), fromPod(tcp(A, REMOTE_NODE, 10250))],
    expect: ['drop_policy_default', 'drop_policy_default', 'pass_default', 'pass_reply', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: "policy - an egress rule admits its peers on its ports only; the peer's replies pass",
    setup: {
      policies: [
        netpol('x', 'a-to-c', { podSelector: sel({ app: 'a' }), policyTypes: ['Egress'], egress: [{ to: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 443 }] }] }),
      ],
    },
    input: [fromPod(tcp(A, XC, 443)), toPod(tcp(XC, A, 40000, 443, SYN | ACK)), fromPod(tcp(A, YC, 443)), fromPod(tcp(A, XC, 80)), fromPod(tcp(A, WORLD, 443))],
    expect: ['pass_policy', 'pass_reply', 'drop_policy_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - endPort admits its range exactly, ends included',
    setup: { policies: [toA('range', [{ ports: [{ protocol: 'TCP', port: 8000, endPort: 8080 }] }])] },
    input: [7999, 8000, 8063, 8064, 8080, 8081].map((dport) => toPod(tcp(WORLD, A, dport))),
    expect: ['drop_policy_default', 'pass_policy', 'pass_policy', 'pass_policy', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - matchExpressions pick peers: NotIn holds for a pod without the key, Exists needs it',
    setup: {
      policies: [
        toA('not-db', [{ from: [{ namespaceSelector: sel({}), podSelector: { matchLabels: {}, matchExpressions: [{ key: 'role', operator: 'NotIn', values: ['db'] }] } }], ports: [{ protocol: 'TCP', port: 80 }] }]),
        toA('with-role', [{ from: [{ namespaceSelector: sel({}), podSelector: { matchLabels: {}, matchExpressions: [{ key: 'role', operator: 'Exists', values: [] }] } }], ports: [{ protocol: 'TCP', port: 81 }] }]),
      ],
    },
    input: [toPod(tcp(YC, A, 80)), toPod(tcp(YB, A, 80)), toPod(tcp(YC, A, 81)), toPod(tcp(YB, A, 81))],
    expect: ['drop_policy_default', 'pass_policy', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - a named port is the number the protected pod declares under that name and protocol',
    setup: { policies: [toA('by-name', [{ ports: [{ protocol: 'TCP', port: 'web' }, { protocol: 'TCP', port: 'dns' }] }])] },
    // x/a declares web = TCP 8080 and dns = UDP 53 only: TCP "dns" matches nothing.
    input: [toPod(tcp(WORLD, A, 8080)), toPod(tcp(WORLD, A, 80)), toPod(udp(WORLD, A, 8080)), toPod(tcp(WORLD, A, 53))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: "policy - an ipBlock of one pod's address admits that pod and not the pod that shares its labels (nor the world)",
    setup: { policies: [toA('one-pod', [{ from: [{ ipBlock: { cidr: `${XC}/32`, except: [] } }] }])] },
    input: [toPod(tcp(XC, A, 80)), toPod(tcp(XC2, A, 80)), toPod(tcp(WORLD, A, 80)), toPod(tcp(XC6, A6, 80))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: "policy - an ipBlock with except, per address: a pod range admits its pods and its unmanaged addresses but the excepted pod; not a node's address, nor the other family",
    setup: { policies: [toA('range', [{ from: [{ ipBlock: { cidr: '10.244.2.0/24', except: [`${XC}/32`] } }] }])] },
    input: [toPod(tcp(XC, A, 80)), toPod(tcp(XC2, A, 80)), toPod(tcp(YB, A, 80)), toPod(tcp(UNMANAGED, A, 80)), toPod(tcp(REMOTE_NODE, A, 80)), toPod(tcp(YC6, A6, 80))],
    expect: ['drop_policy_default', 'pass_policy', 'pass_policy', 'pass_policy', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: "policy - ipBlock 0.0.0.0/0 except the pod ranges admits the world and another node's address, not a pod; an IPv6 peer is not in it",
    setup: { policies: [toA('world', [{ from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.244.0.0/16'] } }] }])] },
    input: [toPod(tcp(WORLD, A, 80)), toPod(tcp(REMOTE_NODE, A, 80)), toPod(tcp(XC, A, 80)), toPod(tcp(UNMANAGED, A, 80)), toPod(tcp(WORLD6, A6, 80))],
    expect: ['pass_policy', 'pass_policy', 'drop_policy_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: "policy - egress ipBlocks: one pod's IPv6 address and a world prefix; egress to a node's address in no block stays denied",
    setup: {
      policies: [
        netpol('x', 'a-out', {
          podSelector: sel({ app: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: `${XC6}/128`, except: [] } }, { ipBlock: { cidr: '192.0.2.0/24', except: [] } }] }],
        }),
      ],
    },
    input: [fromPod(tcp(A6, XC6, 443)), fromPod(tcp(A, XC, 443)), fromPod(tcp(A, WORLD, 443)), fromPod(tcp(A, REMOTE_NODE, 443))],
    expect: ['pass_policy', 'drop_policy_default', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - an egress named port resolves on each destination pod: label twins that give "web" different numbers are each reached on their own, a pod without it on none',
    setup: {
      policies: [
        netpol('x', 'a-to-web', {
          podSelector: sel({ app: 'a' }),
          policyTypes: ['Egress'],
          egress: [{ to: [{ podSelector: sel({ app: 'c' }), namespaceSelector: sel({}) }], ports: [{ protocol: 'TCP', port: 'web' }] }],
        }),
      ],
    },
    input: [fromPod(tcp(A, XC, 80)), fromPod(tcp(A, XC, 8080)), fromPod(tcp(A, XC2, 8080)), fromPod(tcp(A, XC2, 80)), fromPod(tcp(A, YC, 80))],
    expect: ['pass_policy', 'drop_policy_default', 'pass_policy', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - an egress named port without peers reaches every pod that declares it, on its own number, and nothing else',
    setup: { policies: [netpol('x', 'a-to-any-web', { podSelector: sel({ app: 'a' }), policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'TCP', port: 'web' }] }] })] },
    input: [fromPod(tcp(A, XC2, 8080)), fromPod(tcp(A, XC, 80)), fromPod(tcp(A, WORLD, 80)), fromPod(tcp(A, YB, 80))],
    expect: ['pass_policy', 'pass_policy', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - an SCTP port admits SCTP to it, not another port and not TCP to it',
    setup: { policies: [toA('sctp-9', [{ ports: [{ protocol: 'SCTP', port: 9 }] }])] },
    input: [rawTo(sctpF(XC, A, 40000, 9)), rawTo(sctpF(XC, A, 40000, 10)), toPod(tcp(XC, A, 9))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - ingress: [] isolates the pod: TCP, UDP and ICMP drop',
    setup: { policies: [toA('deny', [])] },
    input: [toPod(tcp(XC, A, 80)), toPod(udp(XC, A, 53)), toPod(ping(XC, A))],
    expect: ['drop_policy_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: "policy - podSelector admits the selected pods of the policy's own namespace only",
    setup: { policies: [toA('from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }] }])] },
    input: [toPod(tcp(XC, A, 80)), toPod(tcp(YC, A, 80)), toPod(tcp(B, A, 80))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - namespaceSelector admits every pod of the matching namespaces',
    setup: { policies: [toA('from-team-b', [{ from: [{ namespaceSelector: sel({ team: 'b' }) }] }])] },
    input: [toPod(tcp(YB, A, 80)), toPod(tcp(YC, A, 80)), toPod(tcp(XC, A, 80)), toPod(tcp(ZD, A, 80))],
    expect: ['pass_policy', 'pass_policy', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - namespaceSelector and podSelector in one peer must both match',
    setup: { policies: [toA('d-of-team-a', [{ from: [{ namespaceSelector: sel({ team: 'a' }), podSelector: sel({ app: 'd' }) }] }])] },
    // z/d: both; y/d: pod only; x/c: namespace only
    input: [toPod(tcp(ZD, A, 80)), toPod(tcp(YD, A, 80)), toPod(tcp(XC, A, 80))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - namespaceSelector {} with a podSelector matches those pods in every namespace',
    setup: { policies: [toA('any-ns-b', [{ from: [{ namespaceSelector: sel({}), podSelector: sel({ app: 'b' }) }] }])] },
    input: [toPod(tcp(YB, A, 80)), toPod(tcp(B, A, 80)), toPod(tcp(YC, A, 80))],
    expect: ['pass_policy', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - two peers of one rule are alternatives',
    setup: { policies: [toA('c-or-team-b', [{ from: [{ podSelector: sel({ app: 'c' }) }, { namespaceSelector: sel({ team: 'b' }) }] }])] },
    input: [toPod(tcp(XC, A, 80)), toPod(tcp(YB, A, 80)), toPod(tcp(ZD, A, 80))],
    expect: ['pass_policy', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - a TCP port admits that port of TCP only: not another port, not UDP, not ICMP',
    setup: { policies: [toA('tcp-80', [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 80 }] }])] },
    input: [toPod(tcp(XC, A, 80)), toPod(tcp(XC, A, 81)), toPod(udp(XC, A, 80)), toPod(ping(XC, A, 80))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - a UDP port admits UDP to it and not TCP',
    setup: { policies: [toA('udp-53', [{ ports: [{ protocol: 'UDP', port: 53 }] }])] },
    input: [toPod(udp(WORLD, A, 53)), toPod(tcp(WORLD, A, 53)), toPod(udp(WORLD, A, 54))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'policy - a port written without a protocol is TCP (parsed from YAML)',
    setup: {
      policies: parsePolicyText(
        ['apiVersion: networking.k8s.io/v1', 'kind: NetworkPolicy', 'metadata: {name: port-only, namespace: x}', 'spec:', '  podSelector: {matchLabels: {app: a}}', '  ingress:', '  - ports: [{port: 8080}]', ''].join('\n'),
        'port-only.yaml',
      ) as NetworkPolicy[],
    },
    input: [toPod(tcp(WORLD, A, 8080)), toPod(udp(WORLD, A, 8080))],
    expect: ['pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - a protocol without a port admits every port of that protocol',
    setup: { policies: [toA('all-udp', [{ ports: [{ protocol: 'UDP' }] }])] },
    input: [toPod(udp(WORLD, A, 1)), toPod(udp(WORLD, A, 65535)), toPod(tcp(WORLD, A, 80))],
    expect: ['pass_policy', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - a rule without from admits every source: pods, outside, unmanaged, other nodes',
    setup: { policies: [toA('web', [{ ports: [{ protocol: 'TCP', port: 80 }] }])] },
    input: [toPod(tcp(XC, A, 80)), toPod(tcp(WORLD, A, 80)), toPod(tcp(UNMANAGED, A, 80)), toPod(tcp(REMOTE_NODE, A, 80)), toPod(tcp(WORLD, A, 81))],
    expect: ['pass_policy', 'pass_policy', 'pass_policy', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - a rule without ports admits every protocol and port, ICMP included',
    setup: { policies: [toA('from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }] }])] },
    input: [toPod(tcp(XC, A, 22)), toPod(udp(XC, A, 9999)), toPod(ping(XC, A)), toPod(ping(YC, A))],
    expect: ['pass_policy', 'pass_policy', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'policy - an empty rule {} admits everything',
    setup: { policies: [toA('all', [{}])] },
    input: [toPod(tcp(WORLD, A, 80)), toPod(ping(WORLD, A))],
    expect: ['pass_policy', 'pass_policy'],
  },
  {
    description: 'policy - rules and policies add up',
    setup: {
      policies: [
        toA('c-web', [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 80 }] }]),
        netpol('x', 'dns', { podSelector: sel({}), ingress: [{ ports: [{ protocol: 'UDP', port: 53 }] }, { from: [{ namespaceSelector: sel({ team: 'b' }) }], ports: [{ protocol: 'TCP', port: 443 }] }] }),
      ],
    },
    input: [toPod(tcp(XC, A, 80)), toPod(udp(WORLD, A, 53)), toPod(tcp(YB, A, 443)), toPod(tcp(WORLD, A, 80)), toPod(tcp(XC, A, 443)), toPod(tcp(YB, B, 443)), toPod(tcp(XC, B, 80))],
    expect: ['pass_policy', 'pass_policy', 'pass_policy', 'drop_policy_default', 'drop_policy_default', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: "policy - the node's own address (reserved:host) reaches an isolated pod",
    setup: { policies: [denyAllX] },
    input: [toPod(tcp(HOST, A, 8080)), toPod(ping(HOST, A)), toPod(udp(HOST, A, 53))],
    expect: ['pass_policy', 'pass_policy', 'pass_policy'],
  },
  {
    description: "policy - another node's address is no host: it needs a rule like any outside peer",
    setup: { policies: [toA('from-pods', [{ from: [{ namespaceSelector: sel({}) }] }])] },
    input: [toPod(tcp(REMOTE_NODE, A, 80)), toPod(tcp(YC, A, 80))],
    expect: ['drop_policy_default', 'pass_policy'],
  },
  {
    description: 'policy - an unknown peer is world: a rule naming pods never admits it',
    setup: { policies: [toA('from-pods', [{ from: [{ namespaceSelector: sel({}), podSelector: sel({}) }] }])] },
    input: [toPod(tcp(WORLD, A, 80)), toPod(tcp(UNMANAGED, A, 80)), toPod(tcp(ZD, A, 80))],
    expect: ['drop_policy_default', 'drop_policy_default', 'pass_policy'],
  },
  {
    description: 'policy - each local pod has its own policy even on the same interface',
    setup: { policies: [toA('from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }] }]), netpol('x', 'b-from-b', { podSelector: sel({ app: 'b' }), ingress: [{ from: [{ namespaceSelector: sel({ team: 'b' }), podSelector: sel({ app: 'b' }) }] }] })] },
    input: [toPod(tcp(XC, A, 80)), toPod(tcp(XC, B, 80)), toPod(tcp(YB, B, 80)), toPod(tcp(YB, A, 80))],
    expect: ['pass_policy', 'drop_policy_default', 'pass_policy', 'drop_policy_default'],
  },
];

const IPCACHE_CASES: Case[] = [
  {
    description: 'ipcache - an address the exact map misses gets the identity of its CIDR; an exact entry wins',
    // 10.244.2.0/28 holds x/c (10.244.2.12, exact entry: its own identity) and nobody at 10.244.2.5.
    setup: { policies: [toA('from-db', [{ from: [{ namespaceSelector: sel({}), podSelector: sel({ role: 'db' }) }] }])], cidrs: [['10.244.2.0/28', 'y/c']], model: false },
    input: [toPod(tcp('10.244.2.5', A, 80)), toPod(tcp(XC, A, 80)), toPod(tcp(YC, A, 80)), toPod(tcp(UNMANAGED, A, 80))],
    expect: ['pass_policy', 'drop_policy_default', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'ipcache - the longest CIDR decides',
    setup: { policies: [toA('from-db', [{ from: [{ namespaceSelector: sel({}), podSelector: sel({ role: 'db' }) }] }])], cidrs: [['198.51.100.0/24', 'y/c'], ['198.51.100.128/25', 'z/d']], model: false },
    input: [toPod(tcp('198.51.100.7', A, 80)), toPod(tcp('198.51.100.200', A, 80))],
    expect: ['pass_policy', 'drop_policy_default'],
  },
];

const CONNTRACK_CASES: Case[] = [
  {
    description: 'conntrack - the reply of an allowed connection passes the replying pod (pass_reply), later packets pass established',
    setup: { policies: [toA('from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 80 }] }])] },
    input: [toPod(tcp(XC, A, 80)), fromPod(reply(tcp(XC, A, 80))), toPod(tcp(XC, A, 80, 40000, ACK)), fromPod({ ...reply(tcp(XC, A, 80)), tcpFlags: ACK })],
    expect: ['pass_policy', 'pass_reply', 'pass_established', 'pass_reply'],
  },
  {
    description: 'conntrack - an isolated pod gets the replies of its own connections, and nothing else',
    setup: { policies: [denyAllX] },
    input: [fromPod(tcp(A, WORLD, 443)), toPod(reply(tcp(A, WORLD, 443))), toPod(tcp(WORLD, A, 40000, 444, 0x12)), toPod(tcp(WORLD, A, 40001, 443, 0x12)), toPod(tcp('192.0.2.2', A, 40000, 443, 0x12))],
    expect: ['pass_default', 'pass_reply', 'drop_policy_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'conntrack - UDP: a request allowed by policy gets its response',
    setup: { policies: [toA('dns', [{ from: [{ namespaceSelector: sel({ team: 'b' }) }], ports: [{ protocol: 'UDP', port: 53 }] }])] },
    input: [toPod(udp(YB, A, 53, 5353)), fromPod(reply(udp(YB, A, 53, 5353))), toPod(udp(YB, A, 53, 5353))],
    expect: ['pass_policy', 'pass_reply', 'pass_established'],
  },
  {
    description: 'conntrack - a policy that now denies an established connection cuts it at its next packet, both ways',
    setup: {},
    input: [toPod(tcp(WORLD, A, 80)), { policies: [denyAllX] }, toPod(tcp(WORLD, A, 80, 40000, ACK)), fromPod(reply(tcp(WORLD, A, 80))), toPod(tcp(WORLD, A, 80, 40001))],
    expect: ['pass_default', 'drop_policy_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'conntrack - a policy change that still allows an established connection keeps it, judged again once',
    setup: {},
    input: [
      toPod(tcp(XC, A, 80)),
      { policies: [toA('c-80', [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 80 }] }])] },
      toPod(tcp(XC, A, 80, 40000, ACK)),
      fromPod(reply(tcp(XC, A, 80))),
      toPod(tcp(YC, A, 80)),
    ],
    expect: ['pass_default', 'pass_established', 'pass_reply', 'drop_policy_default'],
  },
  {
    description: "conntrack - egress isolation added later cuts the pod's own connection, not the replies to one it admitted",
    setup: {},
    input: [
      fromPod(tcp(A, XC, 443)),
      toPod(tcp(WORLD, A, 80)),
      { policies: [netpol('x', 'a-sends-nothing', { podSelector: sel({ app: 'a' }), policyTypes: ['Egress'] })] },
      fromPod(tcp(A, XC, 443, 40000, ACK)),
      fromPod(reply(tcp(WORLD, A, 80))),
    ],
    expect: ['pass_default', 'pass_default', 'drop_policy_default', 'pass_reply'],
  },
  {
    description: 'conntrack - a SYN on the ports of a connection that closed opens a new one, judged by policy again',
    setup: {},
    input: [
      ...closedFromWorld(40002),
      toPod(tcp(WORLD, A, 80, 40002, ACK)), // the last ACK of the close still belongs to it
      toPod(tcp(WORLD, A, 80, 40002)), // a new SYN, same ports: a new connection
    ],
    expect: ['pass_default', 'pass_reply', 'pass_established', 'pass_established', 'pass_default'],
  },
  {
    description: "conntrack - the ports of a closed connection reopened the other way round: the entry it leaves is taken over by the new connection, whose direction decides what a reply is",
    setup: {},
    input: [
      ...closedFromWorld(40003),
      fromPod(tcp(A, WORLD, 40003, 80)), // the pod's SYN from port 80 to the peer's 40003: the same key
      toPod(reply(tcp(A, WORLD, 40003, 80))),
      fromPod(tcp(A, WORLD, 40003, 80, ACK)),
    ],
    expect: ['pass_default', 'pass_reply', 'pass_established', 'pass_default', 'pass_reply', 'pass_established'],
  },
  {
    description: "related - an isolated pod's ICMP errors about its own connections pass (fragmentation needed from a router, port unreachable from the peer, IPv6 packet too big); errors quoting another connection, another pod's packet or no connection are judged as ICMP",
    setup: { policies: [denyAllX, netpol('x', 'a-sends-nothing-but', { podSelector: sel({ app: 'a' }), policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'TCP', port: 443 }, { protocol: 'UDP', port: 53 }] }] })] },
    input: [
      fromPod(tcp(A, WORLD, 443, 41000)),
      toPod({ ...icmpErrorFor(tcp(A, WORLD, 443, 41000), '192.0.2.254'), icmpType: 3 }), // fragmentation needed (code aside): related
      fromPod(udp(A, WORLD, 53)),
      toPod(icmpErrorFor(udp(A, WORLD, 53), WORLD)), // port unreachable from the peer itself
      toPod(icmpErrorFor(tcp(A, WORLD, 443, 41001), '192.0.2.254')), // another port: no such connection
      toPod({ ...icmpErrorFor(tcp(B, WORLD, 443, 41000), '192.0.2.254'), dst: A }), // quotes x/b's packet, sent to x/a
      fromPod(tcp(A6, WORLD6, 443, 41000)),
      toPod({ ...icmpErrorFor(tcp(A6, WORLD6, 443, 41000), '2001:db8::fe'), icmpType: 2 }), // packet too big
      toPod(reply(tcp(A, WORLD, 443, 41000))), // the connection goes on
    ],
    expect: ['pass_policy', 'pass_related', 'pass_policy', 'pass_related', 'drop_policy_default', 'drop_policy_default', 'pass_policy', 'pass_related', 'pass_reply'],
  },
  {
    description: "related - a pod's own ICMP error about a connection it admitted passes its egress isolation; one about a connection refused on the way in does not",
    setup: {
      policies: [
        toA('web', [{ ports: [{ protocol: 'UDP', port: 53 }] }]),
        netpol('x', 'a-sends-nothing', { podSelector: sel({ app: 'a' }), policyTypes: ['Egress'] }),
      ],
    },
    input: [toPod(udp(WORLD, A, 53)), fromPod(icmpErrorFor(udp(WORLD, A, 53), A)), toPod(udp(WORLD, A, 54)), fromPod(icmpErrorFor(udp(WORLD, A, 54), A))],
    expect: ['pass_policy', 'pass_related', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'conntrack - ICMP echo reply is matched to its request by identifier',
    setup: { policies: [denyAllX] },
    input: [fromPod(ping(A, WORLD, 7)), toPod(reply(ping(A, WORLD, 7))), toPod(reply(ping(A, WORLD, 8))), toPod(reply(ping(A, '192.0.2.2', 7)))],
    expect: ['pass_default', 'pass_reply', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'conntrack - ICMP echo into an isolated pod, allowed by a rule without ports, is answered',
    setup: { policies: [toA('from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }] }])] },
    input: [toPod(ping(XC, A, 9)), fromPod(reply(ping(XC, A, 9))), toPod(ping(XC, A, 9))],
    expect: ['pass_policy', 'pass_reply', 'pass_established'],
  },
  {
    description: "conntrack - pod to pod on one node: each veth keeps its own entry; one pod's egress never opens another's ingress",
    setup: { policies: [denyAllX] },
    // a → b: a's egress passes (its entry), b's ingress drops; again: b still drops.
    input: [fromPod(tcp(A, B, 80)), toPod(tcp(A, B, 80)), toPod(tcp(A, B, 80, 40000, ACK))],
    expect: ['pass_default', 'drop_policy_default', 'drop_policy_default'],
  },
  {
    description: 'conntrack - pod to pod on one node: an allowed connection passes all four hooks, both pods isolated',
    setup: { policies: [denyAllX, netpol('x', 'b-from-a', { podSelector: sel({ app: 'b' }), ingress: [{ from: [{ podSelector: sel({ app: 'a' }) }] }] })] },
    input: [fromPod(tcp(A, B, 80)), toPod(tcp(A, B, 80)), fromPod(reply(tcp(A, B, 80))), toPod(reply(tcp(A, B, 80)))],
    expect: ['pass_default', 'pass_policy', 'pass_reply', 'pass_reply'],
  },
];

const SPOOF_CASES: Case[] = [
  {
    description: 'spoofing - a pod sending from an address that is not its own is dropped',
    setup: {},
    input: [fromPod(tcp('10.244.1.77', WORLD, 80)), fromPod(tcp(YC, WORLD, 80)), fromPod(udp(WORLD, A, 53))],
    expect: ['drop_invalid_source', 'drop_invalid_source', 'drop_invalid_source'],
  },
  {
    description: 'spoofing - a packet to an address no local pod has is dropped',
    setup: {},
    input: [toPod(tcp(XC, YC, 80)), toPod(tcp(XC, WORLD, 80)), toPod(tcp(XC, HOST, 80))],
    expect: ['drop_unknown_dest', 'drop_unknown_dest', 'drop_unknown_dest'],
  },
  {
    description: 'spoofing - a local pod whose veth is another interface is dropped both ways',
    setup: {},
    input: [toPod(tcp(XC, FAR, 80)), fromPod(tcp(FAR, XC, 80))],
    expect: ['drop_unknown_dest', 'drop_invalid_source'],
  },
];

const tcpTo = (dst: string, dport = 80) => eth().ipv4({ src: XC, dst }).tcp({ sport: 40000, dport });
const PARSE_CASES: Case[] = [
  {
    description: 'parse - ARP passes both ways',
    setup: { policies: [denyAllX] },
    input: [rawTo(eth().arp({ targetIp: A })), rawFrom(eth().arp({ senderIp: A, op: 2 }))],
    expect: ['pass_arp', 'pass_arp'],
  },
  {
    description: 'parse - an unknown ethertype is dropped',
    setup: {},
    input: [rawTo(eth({ type: 0x88cc }).payload(40)), rawFrom(eth({ type: 0x88b5 }).payload(40))],
    expect: ['drop_unknown_l3', 'drop_unknown_l3'],
  },
  {
    description: 'parse - a VLAN-tagged frame is dropped, whatever it carries',
    setup: {},
    input: [rawTo(eth().vlan(10).ipv4({ src: XC, dst: A }).tcp({ sport: 40000, dport: 80 })), rawFrom(eth().vlan(10).arp())],
    expect: ['drop_unknown_l3', 'drop_unknown_l3'],
  },
  {
    description: 'parse - a frame that ends inside the IPv4 options, TCP, UDP or ICMP header is truncated',
    setup: {},
    input: [
      rawTo(eth().ipv4({ src: XC, dst: A, options: Buffer.alloc(40, 1) }).tcp({ sport: 40000, dport: 80 }).truncate(14 + 44)),
      rawTo(tcpTo(A).truncate(14 + 20 + 19)),
      rawTo(eth().ipv4({ src: XC, dst: A }).udp({ sport: 1, dport: 53 }).truncate(14 + 20 + 7)),
      rawTo(eth().ipv4({ src: XC, dst: A }).icmp({ type: 8, id: 1 }).truncate(14 + 20 + 7)),
      rawFrom(eth().ipv4({ src: A, dst: XC }).tcp({ sport: 40000, dport: 80 }).truncate(14 + 20 + 13)),
    ],
    expect: ['drop_truncated', 'drop_truncated', 'drop_truncated', 'drop_truncated', 'drop_truncated'],
  },
  {
    description: 'parse - a header cut short inside a padded frame is truncated: bytes after the IP packet are not headers',
    setup: {},
    // The IP packets end early (total/payload length says so); the NIC's padding fills the frame to 60.
    input: [
      rawTo(eth().ipv4({ src: XC, dst: A, protocol: IPPROTO.TCP }).payload(Buffer.from([0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0]))),
      rawTo(eth().ipv4({ src: XC, dst: A, protocol: IPPROTO.UDP }).payload(Buffer.from([0x9c, 0x40, 0x00, 0x35]))),
      rawTo(eth().ipv4({ src: XC, dst: A, protocol: IPPROTO.ICMP }).payload(Buffer.from([8, 0, 0, 0]))),
      rawTo(eth().ipv6({ src: XC6, dst: A6, nextHeader: IPPROTO.TCP }).payload(Buffer.from([0x9c, 0x40, 0x00, 0x50]))),
      rawTo(eth().ipv6({ src: XC6, dst: A6, nextHeader: IPPROTO.HOPOPTS }).payload(Buffer.from([IPPROTO.TCP]))),
    ],
    expect: ['drop_truncated', 'drop_truncated', 'drop_truncated', 'drop_truncated', 'drop_truncated'],
  },
  {
    description: 'parse - an IP packet longer than its frame is truncated',
    setup: {},
    input: [rawTo(eth().ipv4({ src: XC, dst: A, totalLength: 1000 }).tcp({ sport: 40000, dport: 80 })), rawTo(eth().ipv6({ src: XC6, dst: A6, payloadLength: 1000 }).tcp({ sport: 40000, dport: 80 }))],
    expect: ['drop_truncated', 'drop_truncated'],
  },
  {
    description: 'parse - IPv4 total length 0 (BIG TCP GSO packets) means "to the end of the frame"',
    setup: {},
    input: [
      toPod(tcp(XC, A, 80), eth().ipv4({ src: XC, dst: A, totalLength: 0 }).tcp({ sport: 40000, dport: 80 })),
      rawTo(eth().ipv4({ src: XC, dst: A, totalLength: 0 }).tcp({ sport: 40000, dport: 80 }).truncate(14 + 20 + 10)),
    ],
    expect: ['pass_default', 'drop_truncated'],
  },
  {
    description: 'parse - IPv4 with IHL below 5 or a version other than 4 is invalid',
    setup: {},
    input: [
      rawTo(eth().ipv4({ src: XC, dst: A, ihl: 4 }).tcp({ sport: 1, dport: 80 })),
      rawTo(eth().ipv4({ src: XC, dst: A, version: 6 }).tcp({ sport: 1, dport: 80 })),
      // an IPv4 header behind the IPv6 ethertype
      rawTo(eth({ type: 0x86dd }).ipv4({ src: XC, dst: A }).tcp({ sport: 1, dport: 80 })),
      // total length shorter than the header: 19, and 20 with 4 bytes of options
      rawTo(eth().ipv4({ src: XC, dst: A, totalLength: 19 }).tcp({ sport: 1, dport: 80 })),
      rawTo(eth().ipv4({ src: XC, dst: A, totalLength: 20, options: Buffer.from([0x94, 0x04, 0, 0]) }).tcp({ sport: 1, dport: 80 })),
    ],
    expect: ['drop_invalid_ip', 'drop_invalid_ip', 'drop_invalid_ip', 'drop_invalid_ip', 'drop_invalid_ip'],
  },
  {
    description: 'parse - DF alone is no fragment: the packet is decided whole, its ports read',
    setup: { policies: [toA('dns', [{ ports: [{ protocol: 'UDP', port: 53 }] }])] },
    input: [
      toPod(udp(XC, A, 53, 1), eth().ipv4({ src: XC, dst: A, df: true }).udp({ sport: 1, dport: 53 }).payload(8)),
      toPod(udp(XC, A, 54, 1), eth().ipv4({ src: XC, dst: A, df: true }).udp({ sport: 1, dport: 54 }).payload(8)),
    ],
    expect: ['pass_policy', 'drop_policy_default'],
  },
  {
    description: 'parse - IPv4 options: ports are read after them',
    setup: { policies: [toA('web', [{ ports: [{ protocol: 'TCP', port: 80 }] }])] },
    input: [
      // router alert (4 bytes): IHL 6
      toPod(tcp(WORLD, A, 80), eth().ipv4({ src: WORLD, dst: A, options: Buffer.from([0x94, 0x04, 0, 0]) }).tcp({ sport: 40000, dport: 80 })),
      toPod(tcp(WORLD, A, 81), eth().ipv4({ src: WORLD, dst: A, options: Buffer.from([0x94, 0x04, 0, 0]) }).tcp({ sport: 40000, dport: 81 })),
      // 40 bytes of NOPs: IHL 15, the longest header
      toPod(udp(WORLD, A, 80, 1), eth().ipv4({ src: WORLD, dst: A, options: Buffer.alloc(40, 1) }).udp({ sport: 1, dport: 80 })),
      toPod(tcp(WORLD, A, 80, 40001), eth().ipv4({ src: WORLD, dst: A, options: Buffer.alloc(40, 1) }).tcp({ sport: 40001, dport: 80 })),
    ],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default', 'pass_policy'],
  },
  {
    description: 'parse - an IPv4 packet of protocol 58 is not ICMPv6 neighbour discovery: policy decides it',
    setup: { policies: [denyAllX] },
    input: [rawTo(eth().ipv4({ src: WORLD, dst: A, protocol: IPPROTO.ICMPV6 }).payload(Buffer.from([135, 0, 0, 0, 0, 0, 0, 0, ...Buffer.alloc(16)])))],
    expect: ['drop_policy_default'],
  },
];

const IPV6_CASES: Case[] = [
  {
    description: 'ipv6 - TCP to an IPv6 endpoint follows the same policy, and its reply passes',
    setup: { policies: [toA('from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 80 }] }])] },
    input: [toPod(tcp(XC6, A6, 80)), toPod(tcp(YC6, A6, 80)), toPod(tcp(XC6, A6, 81)), fromPod(reply(tcp(XC6, A6, 80))), toPod(tcp(WORLD6, A6, 80))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_policy_default', 'pass_reply', 'drop_policy_default'],
  },
  {
    description: 'ipv6 - extension headers are walked: hop-by-hop, destination options, routing, AH',
    setup: { policies: [toA('from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 80 }] }])] },
    input: [
      toPod(tcp(XC6, A6, 80), eth().ipv6({ src: XC6, dst: A6 }).hopByHop().tcp({ sport: 40000, dport: 80 })),
      toPod(tcp(XC6, A6, 81), eth().ipv6({ src: XC6, dst: A6 }).hopByHop().tcp({ sport: 40000, dport: 81 })),
      toPod(tcp(XC6, A6, 80, 40001), eth().ipv6({ src: XC6, dst: A6 }).hopByHop().destOpts(Buffer.alloc(14, 0)).routing().ah().tcp({ sport: 40001, dport: 80 })),
      toPod(tcp(YC6, A6, 80), eth().ipv6({ src: YC6, dst: A6 }).hopByHop().tcp({ sport: 40000, dport: 80 })),
    ],
    expect: ['pass_policy', 'drop_policy_default', 'pass_policy', 'drop_policy_default'],
  },
  {
    description: 'ipv6 - more extension headers than the datapath walks are dropped',
    setup: {},
    input: [rawTo(eth().ipv6({ src: XC6, dst: A6 }).hopByHop().destOpts().routing().destOpts().destOpts().tcp({ sport: 40000, dport: 80 }))],
    expect: ['drop_ipv6_ext'],
  },
  {
    description: 'ipv6 - a Fragment header cut short is truncated, first or after a hop-by-hop header',
    setup: {},
    // The payload length ends the packet inside the 8-byte Fragment header; the frame goes on.
    input: [
      rawTo(eth().ipv6({ src: XC6, dst: A6, payloadLength: 4 }).fragment({ more: true }).udp({ sport: 1, dport: 53 })),
      rawTo(eth().ipv6({ src: XC6, dst: A6, payloadLength: 7 }).fragment({ offset: 8, nextHeader: IPPROTO.UDP }).payload(16)),
      rawTo(eth().ipv6({ src: XC6, dst: A6, payloadLength: 8 + 7 }).hopByHop().fragment({ offset: 8, nextHeader: IPPROTO.UDP }).payload(16)),
      rawTo(eth().ipv6({ src: XC6, dst: A6 }).hopByHop().fragment({ more: true }).udp({ sport: 1, dport: 53 }).truncate(14 + 40 + 8 + 5)),
    ],
    expect: ['drop_truncated', 'drop_truncated', 'drop_truncated', 'drop_truncated'],
  },
  {
    description: 'ipv6 - neighbour solicitation and advertisement pass, even to an isolated pod or an unknown address',
    setup: { policies: [denyAllX] },
    input: [
      toPod({ src: XC6, dst: A6, protocol: 'ICMPv6', icmpType: 135 }, eth().ipv6({ src: 'fe80::1', dst: 'ff02::1:ff00:10', hopLimit: 255 }).icmpv6({ type: 135, target: A6 })),
      toPod({ src: XC6, dst: A6, protocol: 'ICMPv6', icmpType: 136 }, eth().ipv6({ src: 'fe80::1', dst: A6, hopLimit: 255 }).icmpv6({ type: 136, target: 'fe80::1' })),
      fromPod({ src: A6, dst: XC6, protocol: 'ICMPv6', icmpType: 135 }, eth().ipv6({ src: '::', dst: 'ff02::1:ff00:1', hopLimit: 255 }).icmpv6({ type: 135, target: 'fe80::1' })),
    ],
    expect: ['pass_ndp', 'pass_ndp', 'pass_ndp'],
  },
  {
    description: 'ipv6 - ICMPv6 echo is policy-checked and its reply matched by identifier',
    setup: { policies: [toA('from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }] }])] },
    input: [toPod(ping(XC6, A6, 3)), fromPod(reply(ping(XC6, A6, 3))), toPod(ping(YC6, A6, 3)), fromPod(ping(A6, WORLD6, 4)), toPod(reply(ping(A6, WORLD6, 4))), toPod(reply(ping(A6, WORLD6, 5)))],
    expect: ['pass_policy', 'pass_reply', 'drop_policy_default', 'pass_default', 'pass_reply', 'drop_policy_default'],
  },
  {
    description: 'ipv6 - a frame that ends inside an extension or TCP header is truncated; a version other than 6 is invalid',
    setup: {},
    input: [
      rawTo(eth().ipv6({ src: XC6, dst: A6 }).hopByHop().tcp({ sport: 1, dport: 80 }).truncate(14 + 40 + 1)),
      rawTo(eth().ipv6({ src: XC6, dst: A6 }).hopByHop().tcp({ sport: 1, dport: 80 }).truncate(14 + 40 + 8 + 19)),
      rawTo(eth().ipv6({ src: XC6, dst: A6 }).tcp({ sport: 1, dport: 80 }).truncate(14 + 40 + 19)),
      rawTo(eth().ipv6({ src: XC6, dst: A6, version: 4 }).tcp({ sport: 1, dport: 80 })),
    ],
    expect: ['drop_truncated', 'drop_truncated', 'drop_truncated', 'drop_invalid_ip'],
  },
];

// Fragment ids are distinct per case (the fragment map is also cleared between cases).
const dnsFromC = toA('dns-from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'UDP', port: 53 }] }]);
/** A datagram whose first fragment policy refuses: that one by policy, the rest as orphans. */
const DENIED_FRAGMENTS: ReasonLabel[] = ['drop_policy_default', 'drop_fragment', 'drop_fragment'];

const FRAGMENT_CASES: Case[] = [
  {
    description: 'fragments - with no policy, a UDP datagram in three fragments reaches the pod',
    setup: {},
    input: fragmentsOf(udp(XC, A, 53), 101).map((f) => toPod(f)),
    expect: ['pass_default', 'pass_established', 'pass_established'],
  },
  {
    description: 'fragments - first, middle and last fragment of an allowed flow reach an isolated pod; the reply passes',
    setup: { policies: [dnsFromC] },
    input: [...fragmentsOf(udp(XC, A, 53), 102).map((f) => toPod(f)), fromPod(reply(udp(XC, A, 53)))],
    expect: ['pass_policy', 'pass_established', 'pass_established', 'pass_reply'],
  },
  {
    description: 'fragments - a denied first fragment drops by policy and is not remembered: its later fragments drop as orphans (wrong port, wrong peer)',
    setup: { policies: [dnsFromC] },
    input: [...fragmentsOf(udp(XC, A, 54), 103).map((f) => toPod(f)), ...fragmentsOf(udp(YC, A, 53), 104).map((f) => toPod(f))],
    expect: [...DENIED_FRAGMENTS, ...DENIED_FRAGMENTS],
  },
  {
    description: 'fragments - a later fragment whose first was not seen drops, even where every packet passes',
    setup: {},
    input: [
      toPod(fragmentOf(udp(XC, A, 53), 105, 3, true)),
      toPod(fragmentOf(udp(XC, A, 53), 105, 6, false)),
      toPod(fragmentOf(udp(XC, A, 53), 106, 0, true)),
      // Not datagram 106: another id, another source, another protocol.
      toPod(fragmentOf(udp(XC, A, 53), 107, 3, false)),
      toPod(fragmentOf(udp(YC, A, 53), 106, 3, false)),
      toPod(fragmentOf(tcp(XC, A, 53), 106, 3, false)),
      toPod(fragmentOf(udp(XC, A, 53), 106, 3, false)),
    ],
    expect: ['drop_fragment', 'drop_fragment', 'pass_default', 'drop_fragment', 'drop_fragment', 'drop_fragment', 'pass_established'],
  },
  {
    description: 'fragments - out of order: the last fragment before the middle one, both after the first',
    setup: { policies: [dnsFromC] },
    input: [0, 2, 1].map((i) => toPod(fragmentsOf(udp(XC, A, 53), 108)[i]!)),
    expect: ['pass_policy', 'pass_established', 'pass_established'],
  },
  {
    description: 'fragments - a fragmented TCP segment and a fragmented ping are decided by port and echo identifier',
    setup: { policies: [toA('web-and-ping-from-c', [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 80 }] }, { from: [{ podSelector: sel({ app: 'c' }) }] }])] },
    input: [
      ...fragmentsOf(tcp(XC, A, 80), 109).map((f) => toPod(f)),
      ...fragmentsOf(ping(XC, A, 11), 110).map((f) => toPod(f)),
      fromPod(reply(ping(XC, A, 11))),
      ...fragmentsOf(ping(YC, A, 12), 111).map((f) => toPod(f)),
    ],
    expect: ['pass_policy', 'pass_established', 'pass_established', 'pass_policy', 'pass_established', 'pass_established', 'pass_reply', ...DENIED_FRAGMENTS],
  },
  {
    description: "fragments - an isolated pod's own fragmented datagram goes out, and the fragmented answer comes back as a reply",
    setup: { policies: [denyAllX] },
    input: [...fragmentsOf(udp(A, WORLD, 53), 112).map((f) => fromPod(f)), ...fragmentsOf(reply(udp(A, WORLD, 53)), 113).map((f) => toPod(f))],
    expect: ['pass_default', 'pass_established', 'pass_established', 'pass_reply', 'pass_reply', 'pass_reply'],
  },
  {
    description: 'fragments - a first fragment is remembered only once parsed whole and its addresses checked',
    setup: {},
    input: [
      // A first fragment too short for its UDP header (4 of 8 bytes): truncated, not remembered.
      rawTo(eth().ipv4({ src: XC, dst: A, id: 114, mf: true, protocol: IPPROTO.UDP }).payload(Buffer.from([0x9c, 0x40, 0x00, 0x35]))),
      toPod(fragmentOf(udp(XC, A, 53), 114, 3, false)),
      // A pod sending a first fragment from an address not its own: dropped, not remembered.
      fromPod(fragmentOf(udp(WORLD, A, 53), 115, 0, true)),
      toPod(fragmentOf(udp(WORLD, A, 53), 115, 3, false)),
    ],
    expect: ['drop_truncated', 'drop_fragment', 'drop_invalid_source', 'drop_fragment'],
  },
  {
    description: 'fragments - IPv6: a Fragment header first behaves as IPv4 fragments do (allowed, denied, orphan)',
    setup: { policies: [dnsFromC] },
    input: [
      ...fragmentsOf(udp(XC6, A6, 53), 0x12345678).map((f) => toPod(f)),
      ...fragmentsOf(udp(XC6, A6, 54), 0x12345679).map((f) => toPod(f)),
      toPod(fragmentOf(udp(XC6, A6, 53), 0x1234567a, 3, false)),
    ],
    expect: ['pass_policy', 'pass_established', 'pass_established', ...DENIED_FRAGMENTS, 'drop_fragment'],
  },
  {
    description: 'fragments - IPv6: after a hop-by-hop header, the same',
    setup: { policies: [dnsFromC] },
    input: [53, 54].flatMap((dport, i) => {
      const id = 201 + i;
      const ip = eth().ipv6({ src: XC6, dst: A6 }).hopByHop();
      const [first, middle, last] = fragmentsOf(udp(XC6, A6, dport), id);
      return [
        toPod(first!, ip.fragment({ id, more: true }).udp({ sport: 40000, dport }).payload(8)),
        toPod(middle!, ip.fragment({ id, offset: 3, more: true, nextHeader: IPPROTO.UDP }).payload(16)),
        toPod(last!, ip.fragment({ id, offset: 6, nextHeader: IPPROTO.UDP }).payload(16)),
      ];
    }),
    expect: ['pass_policy', 'pass_established', 'pass_established', ...DENIED_FRAGMENTS],
  },
  {
    description: "fragments - IPv6: destination options after the Fragment header: later fragments keep the first's protocol",
    setup: { policies: [dnsFromC] },
    // Later fragments name the first header after the Fragment header (destination options), not UDP.
    input: [
      toPod(fragmentOf(udp(XC6, A6, 53), 203, 0, true), eth().ipv6({ src: XC6, dst: A6 }).fragment({ id: 203, more: true }).destOpts().udp({ sport: 40000, dport: 53 })),
      toPod(fragmentOf(udp(XC6, A6, 53), 203, 3, false), eth().ipv6({ src: XC6, dst: A6 }).fragment({ id: 203, offset: 3, nextHeader: IPPROTO.DSTOPTS }).payload(16)),
    ],
    expect: ['pass_policy', 'pass_established'],
  },
  {
    description: 'fragments - IPv6: an atomic fragment (offset 0, no M flag) is a whole packet, and not remembered',
    setup: { policies: [dnsFromC] },
    input: [toPod(fragmentOf(udp(XC6, A6, 53), 204, 0, false)), toPod(fragmentOf(udp(XC6, A6, 54), 205, 0, false)), toPod(fragmentOf(udp(XC6, A6, 53), 204, 3, false))],
    expect: ['pass_policy', 'drop_policy_default', 'drop_fragment'],
  },
  {
    description: 'fragments - IPv6: a fragmented neighbour solicitation is no neighbour discovery: policy decides it',
    setup: { policies: [denyAllX] },
    input: [
      toPod(
        { src: XC6, dst: A6, protocol: 'ICMPv6', icmpType: 135, fragment: { id: 206, offset: 0, more: true } },
        eth().ipv6({ src: XC6, dst: A6, hopLimit: 255 }).fragment({ id: 206, more: true }).icmpv6({ type: 135, target: A6 }),
      ),
    ],
    expect: ['drop_policy_default'],
  },
];

// ---- running a case ----

let dp: NodeDatapath;
beforeAll(() => {
  dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
});
afterAll(() => dp?.close());

const PROGRAM: Record<Hook, string> = { to_pod: PROGRAM_NAMES.tp_to_pod, from_pod: PROGRAM_NAMES.tp_from_pod };

/** Writes the maps for a cluster: the compiler's output, plus extra CIDR entries through the same codecs. */
function load(d: NodeDatapath, cluster: ModelCluster, cidrs: Setup['cidrs'] = []): void {
  const bridge = desiredInputOf(cluster);
  const desired = compile(bridge.input);
  for (const [cidr, who] of cidrs) desired.ipcidr.push({ key: ipcidrKey(cidr), value: { identity: bridge.identities.get(who)! } });
  d.maps.sync(desired);
}

/** Forgets connections and fragments: each case starts from empty datapath state. */
function clearState(d: NodeDatapath): void {
  for (const k of [...d.ct.raw.keys()]) d.ct.raw.delete(k);
  for (const k of [...d.frag.raw.keys()]) d.frag.raw.delete(k);
}

function counted(before: ReasonCount[], after: ReasonCount[]): ReasonCount[] {
  const key = (r: ReasonCount) => `${r.direction}/${r.reason}`;
  const was = new Map(before.map((r) => [key(r), r]));
  return after
    .map((r) => ({ ...r, packets: r.packets - (was.get(key(r))?.packets ?? 0n), bytes: r.bytes - (was.get(key(r))?.bytes ?? 0n) }))
    .filter((r) => r.packets !== 0n);
}

interface Observed {
  reason: string;
  verdict: 'pass' | 'drop';
  counted: { direction: string; packets: bigint; bytes: bigint }[];
  rewritten: boolean;
}

/** Runs one frame on one hook; what the program returned and counted, and whether it touched the bytes. */
function runHook(d: NodeDatapath, hook: Hook, frame: Buffer): Observed {
  const before = d.readMetrics();
  const r = testRun(d.obj.program(PROGRAM[hook]), frame);
  const rows = counted(before, d.readMetrics());
  return {
    reason: rows.length === 1 ? reasonName(rows[0]!.reason) : `${rows.length} reasons counted`,
    verdict: r.retval === TC_ACT.UNSPEC ? 'pass' : r.retval === TC_ACT.SHOT ? 'drop' : (`retval ${r.retval}` as 'pass'),
    counted: rows.map(({ direction, packets, bytes }) => ({ direction, packets, bytes })),
    rewritten: !r.data.equals(frame),
  };
}

function expected(hook: Hook, reason: ReasonLabel, frame: Buffer): Observed {
  return {
    reason,
    verdict: reason.startsWith('pass_') ? 'pass' : 'drop',
    counted: [{ direction: hook === 'to_pod' ? 'ingress' : 'egress', packets: 1n, bytes: BigInt(frame.length) }],
    rewritten: false,
  };
}

async function runCase(d: NodeDatapath, c: Case, lifetimes: Lifetimes = DEFAULT_LIFETIMES, pause?: (i: number) => Promise<void>): Promise<void> {
  clearState(d);
  let cluster: ModelCluster = { ...BASE, policies: c.setup.policies ?? [] };
  load(d, cluster, c.setup.cidrs);
  const model = new PolicyModel(cluster, lifetimes);
  const steps = c.input.filter((s): s is PacketStep | RawStep => 'hook' in s);
  expect(steps.length, 'one expectation per packet').toBe(c.expect.length);
  let n = 0;
  for (const step of c.input) {
    if ('policies' in step) {
      cluster = { ...cluster, policies: step.policies };
      load(d, cluster, c.setup.cidrs);
      model.setCluster(cluster);
      continue;
    }
    await pause?.(n);
    const want = c.expect[n]!;
    const frame = ('raw' in step ? step.raw : (step.frame ?? frameOf(step.packet))).build();
    model.now = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns()
    const got = runHook(d, step.hook, frame);
    expect(got, `packet ${n + 1} (${step.hook})`).toEqual(expected(step.hook, want, frame));
    if ('packet' in step && c.setup.model !== false) {
      expect(model.hook(step.hook, step.packet).reason, `model, packet ${n + 1} (${step.hook})`).toBe(want);
    }
    n++;
  }
}

const TABLES: [string, Case[]][] = [
  ['default', DEFAULT_CASES],
  ['policy', POLICY_CASES],
  ['ipcache', IPCACHE_CASES],
  ['conntrack', CONNTRACK_CASES],
  ['spoofing', SPOOF_CASES],
  ['parse', PARSE_CASES],
  ['ipv6', IPV6_CASES],
  ['fragments', FRAGMENT_CASES],
];

for (const [area, cases] of TABLES) {
  describe(area, () => {
    for (const c of cases) it(c.description, () => runCase(dp, c));
  });
}

describe('parse - frames the kernel refuses', () => {
  it('parse - a frame shorter than an Ethernet header never reaches the program', () => {
    expect(() => testRun(dp.obj.program(PROGRAM.to_pod), Buffer.alloc(13))).toThrow(/EINVAL/);
  });

  // BPF_PROG_TEST_RUN (6.x) refuses IPv4 frames without a whole IPv4 header and IPv6
  // frames without a whole IPv6 header, so these may never reach the program here; on a
  // veth they can, and any that does must be dropped as truncated.
  it('parse - Ethernet only, and IPv4 or IPv6 headers cut short, are dropped as truncated or refused', () => {
    const frames = [
      eth().ipv4({ src: XC, dst: A }).tcp({ sport: 1, dport: 80 }).truncate(14),
      eth().ipv4({ src: XC, dst: A }).tcp({ sport: 1, dport: 80 }).truncate(14 + 19),
      eth().ipv6({ src: XC6, dst: A6 }).tcp({ sport: 1, dport: 80 }).truncate(14),
      eth().ipv6({ src: XC6, dst: A6 }).tcp({ sport: 1, dport: 80 }).truncate(14 + 39),
    ];
    for (const [i, f] of frames.entries()) {
      const frame = f.build();
      let got: Observed;
      try {
        got = runHook(dp, 'to_pod', frame);
      } catch (err) {
        expect((err as BpfError).errno, `frame ${i + 1}: refused`).toBe(22);
        continue;
      }
      expect(got, `frame ${i + 1}`).toEqual(expected('to_pod', 'drop_truncated', frame));
    }
  });
});

// ---- conntrack lifetimes, with short ones set through rodata ----

describe('conntrack - expiry', () => {
  const MS = 1_000_000n;
  const lifetimes: Lifetimes = { tcpSyn: 100n * MS, tcp: 60_000n * MS, tcpClosing: 100n * MS, other: 100n * MS, refresh: 1n * MS };
  let short: NodeDatapath;
  beforeAll(() => {
    short = NodeDatapath.open({
      objectPath: OBJECT_PATH,
      rodata: {
        tp_ct_lifetime_tcp_syn_ns: lifetimes.tcpSyn,
        tp_ct_lifetime_tcp_ns: lifetimes.tcp,
        tp_ct_lifetime_tcp_closing_ns: lifetimes.tcpClosing,
        tp_ct_lifetime_other_ns: lifetimes.other,
        tp_ct_refresh_ns: lifetimes.refresh,
      },
    });
  });
  afterAll(() => short?.close());

  it('conntrack - an expired UDP flow is evaluated by policy again', async () => {
    const flow = udp(WORLD, A, 53);
    const c: Case = {
      description: 'expiry',
      setup: {},
      input: [toPod(flow), toPod(flow), toPod(flow), fromPod(reply(flow))],
      // The third is a new flow again (not established), and the pod's answer is its reply.
      expect: ['pass_default', 'pass_established', 'pass_default', 'pass_reply'],
    };
    // 250 ms of silence before the third packet: more than the 100 ms lifetime.
    await runCase(short, c, lifetimes, async (i) => void (i === 2 && (await sleep(250))));
  });

  it('conntrack - traffic keeps a UDP flow alive past its first lifetime', async () => {
    const flow = udp(WORLD, A, 53, 4000);
    const c: Case = {
      description: 'refresh',
      setup: {},
      input: [toPod(flow), ...Array.from({ length: 6 }, () => toPod(flow)), fromPod(reply(flow))],
      expect: ['pass_default', ...Array<ReasonLabel>(6).fill('pass_established'), 'pass_reply'],
    };
    // A packet every 40 ms for 240 ms: well past 100 ms, never 100 ms apart.
    await runCase(short, c, lifetimes, async (i) => void (i > 0 && (await sleep(40))));
  });

  it('conntrack - FIN shortens a TCP connection to the closing lifetime; an answered one without FIN lives on', async () => {
    const closing = tcp(WORLD, A, 80, 41000);
    const open = tcp(WORLD, A, 80, 41001);
    const c: Case = {
      description: 'fin',
      setup: {},
      input: [
        toPod(closing),
        fromPod(reply(closing)),
        toPod(open),
        fromPod(reply(open)),
        toPod({ ...closing, tcpFlags: FIN_ACK }),
        toPod({ ...closing, tcpFlags: ACK }),
        toPod({ ...open, tcpFlags: ACK }),
      ],
      // After 250 ms the closed one is gone (its ACK is judged as new), the open one is not.
      expect: ['pass_default', 'pass_reply', 'pass_default', 'pass_reply', 'pass_established', 'pass_default', 'pass_established'],
    };
    await runCase(short, c, lifetimes, async (i) => void (i === 5 && (await sleep(250))));
  });
});
