/** Agent options, validated once at start; the sync path trusts them. */
import { z } from 'zod';
import { isCidr } from '../src/datapath/addr.js';
import { validateLabelKey, validateLabelValue } from '../src/policy/selector.js';
import { BPFFS_ROOT, DATAPATH_OBJECT } from '../src/paths.js';

/** Maps whose size is a capacity only (no id space, no layout behind it), resizable by --map-entries. */
export const RESIZABLE_MAPS = ['tp_endpoints_v1', 'tp_ipcache_v1', 'tp_ipcidr_v1', 'tp_frag_v1', 'tp_svc_v1', 'tp_affinity_v1', 'tp_rulecnt_v1', 'tp_evrate_v1'] as const;

export const agentOptions = z.strictObject({
  node: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a node name is a DNS label (lowercase letters, digits, -)'),
  nats: z.string().regex(/^(nats|tls):\/\/[^\s]+$/, 'a NATS URL like nats://10.0.0.1:4222'),
  /** The node's pod ranges, at most one per family (`--pod-cidr 10.244.1.0/24,fd00:10:244:1::/64`). */
  podCIDRs: z
    .array(z.string().refine(isCidr, 'a CIDR like 10.244.1.0/24 or fd00:10:244:1::/64'))
    .refine((l) => new Set(l.map((c) => c.includes(':'))).size === l.length, 'at most one range per family')
    .default([]),
  bpffsRoot: z.string().default(BPFFS_ROOT),
  objectPath: z.string().default(DATAPATH_OBJECT),
  attachMode: z.enum(['auto', 'tcx', 'clsact']).default('auto'),
  /**
   * The node's uplink: NodePorts, external and load balancer IPs are served on it
   * (without one, only traffic from pods is load-balanced).
   */
  uplink: z.string().regex(/^[^\s/]{1,15}$/, 'an interface name (at most 15 characters)').optional(),
  /** Labels the node registers with the first time (`KEY=VALUE,…`, as the kubelet's --node-labels). */
  nodeLabels: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const out: Record<string, string> = {};
      for (const item of v ? v.split(',') : []) {
        const eq = item.indexOf('=');
        const bad = eq < 0 ? 'expected KEY=VALUE' : (validateLabelKey(item.slice(0, eq)) ?? validateLabelValue(item.slice(eq + 1)));
        if (bad) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(item)}: ${bad}` });
          return z.NEVER;
        }
        out[item.slice(0, eq)] = item.slice(eq + 1);
      }
      return out;
    }),
  ctMaxEntries: z.number().int().min(1024).max(16_777_216).optional(),
  /**
   * Policy entries this node may write (the policy map's size when first created; with a
   * map pinned already, at most its size): endpoints whose entries do not fit fail closed.
   */
  policyMapEntries: z.number().int().min(1).max(16_777_216).optional(),
  /** Policy entries one endpoint may have before it fails closed (0: only the map's limit). */
  policyEntriesPerEndpoint: z.number().int().min(0).max(16_777_216).default(0),
  /**
   * Sizes of other maps, `NAME=N,…` (`tp_ipcache_v1=131072,tp_endpoints_v1=4096`), set when
   * the maps are first created: the maps whose size is only a capacity.
   */
  mapEntries: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const out: Record<string, number> = {};
      for (const item of v ? v.split(',') : []) {
        const [name, n] = item.split('=');
        const size = Number(n);
        if (!name || !(RESIZABLE_MAPS as readonly string[]).includes(name) || !Number.isInteger(size) || size < 1 || size > 16_777_216) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(item)}: expected NAME=N with N from 1 to 16777216 and NAME one of ${RESIZABLE_MAPS.join(', ')}` });
          return z.NEVER;
        }
        out[name] = size;
      }
      return out;
    }),
  /** Size of the backends map (every service port's backends on the node); set when the maps are first created. */
  lbMaxBackends: z.number().int().min(1024).max(16_777_216).optional(),
  /**
   * How pods' packets for other nodes' pods leave: bpf sends them out of the uplink from tc
   * (bpf/lib/forward.h); stack leaves them to the node's forwarding, where netfilter
   * FORWARD and POSTROUTING see them (Cilium's legacy host routing).
   */
  hostRouting: z.enum(['bpf', 'stack']).default('bpf'),
  /** Verdict events for observe at all (off: the datapath reports nothing, observe shows nothing). */
  events: z.enum(['on', 'off']).default('on'),
  /** Report 1 in N allowed new connections as verdict events (0: none); every drop is reported. */
  eventSample: z.number().int().min(0).max(1_000_000).default(1),
  /** Verdict events per endpoint per second the datapath sends at most (0: no limit); what it holds back is counted. */
  eventRate: z.number().int().min(0).max(1_000_000).default(1000),
  /** The ring buffer verdict events wait in, bytes: a power of 2 of at least 64 KiB (set when the maps are first created). */
  eventRingBytes: z
    .number()
    .int()
    .min(65536)
    .max(1 << 30)
    .refine((n) => (n & (n - 1)) === 0, 'a power of 2')
    .optional(),
  /** Verdict events the agent keeps for `observe --last` and `--since`. */
  flowHistory: z.number().int().min(0).max(1_000_000).default(8192),
  /** host:port for Prometheus /metrics, or `none`. */
  metricsAddress: z
    .string()
    .regex(/^(none|[^\s:]*:\d{1,5})$/, 'host:port (e.g. 127.0.0.1:9962) or none')
    .default('127.0.0.1:9962'),
  statusIntervalMs: z.number().int().min(100).default(10_000),
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
});

export type AgentOptions = z.infer<typeof agentOptions>;
