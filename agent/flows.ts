/**
 * Verdict events of this node, for `tcplane observe`: read from the datapath's ring
 * buffer on a timer (never blocking the event loop), named (pods, policies and rules,
 * services), kept in a bounded history and published over NATS (src/store/flows.ts).
 *
 * A default deny (no rule decided) names every NetworkPolicy that isolates the pod in
 * that direction; an allowed connection names the rule that allowed it.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { RingBuffer } from '../src/bpf/ringbuf.js';
import type { Isolation, PolicyRef, RuleInfo } from '../src/datapath/desired.js';
import { decodeEvent, type DatapathEvent } from '../src/datapath/events.js';
import { FLOW_HISTORY_SUBJECT, flowMatches, flowSubject, historyRequestSchema, type Flow, type FlowEndpoint } from '../src/store/flows.js';

const PROTOCOL_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };
const HAS_PORTS = new Set([6, 17, 132]);
/** Flows per history answer message (NATS' default payload limit is 1 MiB). */
const CHUNK = 500;

export interface PodName {
  namespace: string;
  name: string;
}

/** What turns ids into names: refreshed by the reconcile stages that own each part. */
export interface FlowNames {
  /** Local endpoints by endpoint id. */
  endpoints: Map<number, PodName>;
  /** Every pod of the cluster by address. */
  pods: Map<string, PodName>;
  rules: Map<number, PolicyRef>;
  /** `<endpoint id>/<direction>` → the NetworkPolicies isolating it. */
  isolation: Map<string, PolicyRef[]>;
  /** Service port id → `ns/name`. */
  services: Map<number, string>;
}

export function emptyNames(): FlowNames {
  return { endpoints: new Map(), pods: new Map(), rules: new Map(), isolation: new Map(), services: new Map() };
}

export function policyNames(rules: readonly RuleInfo[], isolation: readonly Isolation[]): Pick<FlowNames, 'rules' | 'isolation'> {
  return {
    rules: new Map(rules.map((r) => [r.id, r.policy])),
    isolation: new Map(isolation.map((i) => [`${i.endpointId}/${i.direction}`, i.policies])),
  };
}

/** A datapath event as `observe` shows it. */
export function flowOf(e: DatapathEvent, node: string, names: FlowNames, wallMs: number): Flow {
  const ports = e.family !== null && HAS_PORTS.has(e.protocol);
  const podAt = (ip: string | null) => (ip === null ? undefined : names.pods.get(ip));
  const side = (ip: string | null, port: number, identity: number, pod: PodName | undefined): FlowEndpoint => ({
    namespace: pod?.namespace ?? null,
    pod: pod?.name ?? null,
    ip,
    port: ports ? port : null,
    identity: identity || null,
  });
  const local = e.endpointId ? names.endpoints.get(e.endpointId) : undefined;
  const to = e.backend ?? e.dst; // after translation
  const source =
    e.direction === 'egress' && e.endpointId
      ? side(e.src.ip, e.src.port, e.identity, local)
      : side(e.src.ip, e.src.port, e.direction === 'ingress' ? e.peerIdentity : 0, podAt(e.src.ip));
  const destination =
    e.direction === 'ingress' && e.endpointId
      ? side(to.ip, to.port, e.identity, local)
      : side(to.ip, to.port, e.direction === 'egress' ? e.peerIdentity : 0, podAt(to.ip));
  return {
    time: new Date(wallMs).toISOString(),
    node,
    verdict: e.verdict,
    reason: e.reasonName,
    direction: e.direction,
    protocol: e.family === null ? 'unknown' : (PROTOCOL_NAMES[e.protocol] ?? `proto-${e.protocol}`),
    family: e.family,
    source,
    destination,
    service: e.serviceId ? (names.services.get(e.serviceId) ?? null) : null,
    policies: decidedBy(e, names),
    sampled: e.sampled,
    suppressed: e.suppressed,
  };
}

function decidedBy(e: DatapathEvent, names: FlowNames): PolicyRef[] {
  if (e.ruleId) return [names.rules.get(e.ruleId) ?? { kind: 'unknown', namespace: null, name: `rule-${e.ruleId}`, rule: null }];
  if (e.reasonName === 'drop_policy_default' || e.reasonName === 'audit_policy_default') return names.isolation.get(`${e.endpointId}/${e.direction}`) ?? [];
  return [];
}

export interface FlowReporterOptions {
  node: string;
  /** The datapath's event counts (emitted, held back by the rate limit, lost), told with every history answer. */
  stats?: () => { emitted: bigint; suppressed: bigint; lost: bigint };
  /** Events kept for `observe --last` / `--since`. */
  historySize: number;
  pollMs: number;
}

export class FlowReporter {
  private names: FlowNames = emptyNames();
  private readonly history: Flow[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sub: Subscription | null = null;

  constructor(
    private readonly events: RingBuffer,
    private readonly nc: NatsConnection,
    private readonly opts: FlowReporterOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.poll(), this.opts.pollMs);
    this.sub = this.nc.subscribe(FLOW_HISTORY_SUBJECT, { callback: (err, msg) => (err ? this.log.warn({ err }, 'flow history subscription') : this.answer(msg.data, msg.reply)) });
  }

  /** Replaces the parts of the names given. */
  setNames(part: Partial<FlowNames>): void {
    this.names = { ...this.names, ...part };
  }

  /** Reads, names, keeps and publishes every event waiting. */
  poll(): void {
    let records: Buffer[];
    try {
      records = this.events.poll();
    } catch (err) {
      this.log.warn({ err }, 'reading verdict events failed');
      return;
    }
    if (records.length === 0) return;
    // CLOCK_MONOTONIC (the datapath's clock) to wall time, taken now: follows clock steps.
    const offsetMs = Date.now() - Number(process.hrtime.bigint() / 1_000_000n);
    const subject = flowSubject(this.opts.node);
    for (const r of records) {
      const e = decodeEvent(r);
      if (!e) continue;
      const flow = flowOf(e, this.opts.node, this.names, Number(e.monoNs / 1_000_000n) + offsetMs);
      this.history.push(flow);
      this.nc.publish(subject, JSON.stringify(flow));
    }
    if (this.history.length > this.opts.historySize) this.history.splice(0, this.history.length - this.opts.historySize);
  }

  /** Answers a history request: matching flows in chunks, the last chunk marked done. */
  private answer(data: Uint8Array, reply: string | undefined): void {
    if (!reply) return;
    let req;
    try {
      req = historyRequestSchema.parse(JSON.parse(new TextDecoder().decode(data)));
    } catch (err) {
      this.nc.publish(reply, JSON.stringify({ node: this.opts.node, error: `bad history request: ${(err as Error).message}`, flows: [], done: true }));
      return;
    }
    this.poll(); // what the datapath holds now belongs to the history asked for
    let flows = this.history.filter((f) => flowMatches(f, req.filter) && (req.sinceMs === undefined || Date.parse(f.time) >= req.sinceMs));
    if (req.last !== undefined) flows = flows.slice(-req.last);
    const s = this.opts.stats?.();
    const events = s ? { emitted: String(s.emitted), suppressed: String(s.suppressed), lost: String(s.lost) } : undefined;
    for (let i = 0; i < flows.length || i === 0; i += CHUNK) {
      const done = i + CHUNK >= flows.length;
      this.nc.publish(reply, JSON.stringify({ node: this.opts.node, flows: flows.slice(i, i + CHUNK), done, ...(done && events ? { events } : {}) }));
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sub?.unsubscribe();
    this.poll();
    this.events.close();
  }
}
