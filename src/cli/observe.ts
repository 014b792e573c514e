/**
 * `tcplane observe`: verdict events from every node (agent/flows.ts), like `hubble
 * observe`. Without -f it prints the most recent events the agents hold (--last, 20 by
 * default; or those --since) and exits; with -f it then follows the live stream until
 * interrupted. Filters apply to both.
 */
import type { Command } from 'commander';
import { nodeRecord } from '../store/schema.js';
import { FLOW_HISTORY_SUBJECT, flowMatches, flowSchema, flowSubject, type Flow, type FlowEndpoint, type FlowFilter, type HistoryRequest } from '../store/flows.js';
import { gather } from '../store/gather.js';
import type { Store } from '../store/store.js';
import { withStore } from './store.js';

const VERDICTS = ['forwarded', 'dropped', 'rejected', 'audit'] as const;
/** How long the agents have to answer a history request (a node that is down never does). */
const HISTORY_WAIT_MS = 3000;

/** `--since 5m` / `30s` / `2h`, or an ISO time: milliseconds since the epoch. */
export function parseSince(v: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (m) return now - Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new Error(`--since ${JSON.stringify(v)}: a duration like 30s, 5m, 2h, or a time like 2026-12-02T10:00:00Z`);
  return t;
}

export function filterOf(o: Record<string, unknown>): FlowFilter {
  const f: FlowFilter = {};
  for (const k of ['namespace', 'pod', 'fromPod', 'toPod', 'policy', 'protocol', 'node'] as const) if (typeof o[k] === 'string') f[k] = o[k] as string;
  if (o.verdict !== undefined) {
    const v = String(o.verdict).toLowerCase();
    if (!(VERDICTS as readonly string[]).includes(v)) throw new Error(`--verdict ${JSON.stringify(o.verdict)}: one of ${VERDICTS.join(', ')}`);
    f.verdict = v as Flow['verdict'];
  }
  if (o.port !== undefined) {
    const p = Number(o.port);
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`--port ${JSON.stringify(o.port)}: a port number 0-65535`);
    f.port = p;
  }
  return f;
}

const who = (e: FlowEndpoint) =>
  e.ip === null ? '(unreadable)' : `${e.pod ? `${e.namespace}/${e.pod} ` : ''}${e.ip.includes(':') && e.port !== null ? `[${e.ip}]` : e.ip}${e.port !== null ? `:${e.port}` : ''}`;
const policyText = (p: Flow['policies'][number]) => `${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name}${p.rule ? ` ${p.rule}` : ''}`;

/** The readable line of one flow. */
export function flowLine(f: Flow): string {
  const parts = [
    f.time,
    f.node,
    f.verdict.toUpperCase(),
    `${who(f.source)} -> ${who(f.destination)}`,
    f.protocol,
    f.direction,
    f.reason,
  ];
  if (f.service) parts.push(`service ${f.service}`);
  if (f.policies.length > 0) parts.push(`by ${f.policies.map(policyText).join(', ')}`);
  if (f.suppressed > 0) parts.push(`(${f.suppressed} earlier events of this pod held back by the rate limit)`);
  return parts.join('  ');
}

/** Asks every agent for its recent flows; merged oldest first, the last `last` of all. */
async function history(store: Store, req: HistoryRequest): Promise<{ flows: Flow[]; silent: string[] }> {
  const nodes = (await store.list('nodes', nodeRecord)).entries.keys();
  const { replies, silent } = await gather(store.nc, FLOW_HISTORY_SUBJECT, req, nodes, HISTORY_WAIT_MS);
  const flows: Flow[] = [];
  for (const m of replies) {
    if (m.error) process.stderr.write(`warning: node ${m.node}: ${m.error}\n`);
    const ev = m.events as { suppressed?: string; lost?: string } | undefined;
    if (ev && (ev.lost !== '0' || ev.suppressed !== '0')) {
      // Never silently: what the datapath could not report is said, with where to look.
      process.stderr.write(`note: node ${m.node}: ${ev.lost} events lost to a full ring buffer, ${ev.suppressed} held back by the rate limit (tcplane_verdict_events_total)\n`);
    }
    for (const raw of Array.isArray(m.flows) ? m.flows : []) {
      const f = flowSchema.safeParse(raw);
      if (f.success) flows.push(f.data);
    }
  }
  flows.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return { flows: req.last !== undefined ? flows.slice(-req.last) : flows, silent };
}

export function registerObserveCommand(program: Command): void {
  program
    .command('observe')
    .description('verdict events from every node: drops with the policy and rule that decided, sampled allows')
    .option('--namespace <ns>', 'either side in this namespace')
    .option('--pod <[ns/]name>', 'either side is this pod')
    .option('--from-pod <[ns/]name>', 'the source is this pod')
    .option('--to-pod <[ns/]name>', 'the destination is this pod (after service translation)')
    .option('--verdict <verdict>', `one of ${VERDICTS.join(', ')}`)
    .option('--policy <[ns/]name>', 'decided by this policy')
    .option('--port <n>', 'either side on this port')
    .option('--protocol <name>', 'TCP, UDP, SCTP, ICMP or ICMPv6')
    .option('--node <name>', 'seen on this node')
    .option('--since <time>', 'events since this long ago (30s, 5m, 2h) or this time (ISO 8601)')
    .option('--last <n>', 'the last N events (default 20 without -f)')
    .option('-f, --follow', 'then follow new events until interrupted')
    .option('-o, --output <format>', 'line or json (one object per line)', 'line')
    .option('--nats <url>', 'NATS server (default: $TCPLANE_NATS, or the running lab)')
    .action(async (o) => {
      const filter = filterOf(o);
      if (o.output !== 'line' && o.output !== 'json') throw new Error(`-o ${JSON.stringify(o.output)}: line or json`);
      const last = o.last !== undefined ? Number(o.last) : o.follow || o.since ? undefined : 20;
      if (last !== undefined && (!Number.isInteger(last) || last < 1)) throw new Error(`--last ${JSON.stringify(o.last)}: a positive whole number`);
      const sinceMs = o.since !== undefined ? parseSince(o.since) : undefined;
      const print = (f: Flow) => process.stdout.write(`${o.output === 'json' ? JSON.stringify(f) : flowLine(f)}\n`);
      await withStore(o.nats, async (store) => {
        // Subscribed before asking for history, so nothing falls between the two.
        const seen: Flow[] = [];
        let live: ((f: Flow) => void) | null = null;
        const sub = o.follow
          ? store.nc.subscribe(flowSubject('*'), {
              callback: (_err, msg) => {
                const f = flowSchema.safeParse(JSON.parse(new TextDecoder().decode(msg.data)));
                if (!f.success || !flowMatches(f.data, filter)) return;
                if (live) live(f.data);
                else seen.push(f.data);
              },
            })
          : null;
        if (!o.follow || last !== undefined || sinceMs !== undefined) {
          const h = await history(store, { filter, ...(last !== undefined ? { last } : {}), ...(sinceMs !== undefined ? { sinceMs } : {}) });
          for (const n of h.silent) process.stderr.write(`warning: node ${n} did not answer (agent down?)\n`);
          for (const f of h.flows) print(f);
          // Flows that arrived live while history was asked for, and not in it.
          const printed = new Set(h.flows.map((f) => JSON.stringify(f)));
          for (const f of seen) if (!printed.has(JSON.stringify(f))) print(f);
        } else {
          for (const f of seen) print(f);
        }
        if (!sub) return;
        live = print;
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        sub.unsubscribe();
      });
    });
}
