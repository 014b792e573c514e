/**
 * Prometheus metrics of the agent and its datapath, served over HTTP (`/metrics`).
 * Datapath counters are read from the per-CPU metrics map at scrape time, summed over
 * CPUs: nothing is counted twice and the kernel's numbers are the source of truth.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PolicyRef } from '../src/datapath/desired.js';
import type { NodeDatapath, ReasonCount } from '../src/datapath/node-datapath.js';
import { isDrop, reasonName } from '../src/datapath/reasons.js';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'tcplane_reconcile_total', help: 'Reconciles run', registers: [this.registry] });
  readonly reconcileErrors = new Counter({ name: 'tcplane_reconcile_errors_total', help: 'Reconciles that failed (retried)', registers: [this.registry] });
  readonly reconcileSeconds = new Histogram({
    name: 'tcplane_reconcile_duration_seconds',
    help: 'Time from the start of a reconcile to the maps and status written',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly mapWrites = new Counter({
    name: 'tcplane_map_writes_total',
    help: 'BPF map entries written or deleted by reconciles',
    labelNames: ['map', 'op'],
    registers: [this.registry],
  });
  readonly endpoints = new Gauge({ name: 'tcplane_endpoints', help: 'Local pods the datapath enforces', registers: [this.registry] });
  readonly failedClosed = new Gauge({
    name: 'tcplane_endpoints_failed_closed',
    help: 'Local pods whose policy entries do not fit (a full policy map or the per-endpoint limit): they admit nothing',
    registers: [this.registry],
  });
  readonly revision = new Gauge({
    name: 'tcplane_enforced_revision',
    help: 'Last store revision enforced in the maps, per bucket',
    labelNames: ['bucket'],
    registers: [this.registry],
  });

  constructor(dp: NodeDatapath, ruleNames: () => ReadonlyMap<number, PolicyRef> = () => new Map()) {
    // Packets and bytes: one counter each, filled from the same map read at scrape time.
    for (const [unit, pick] of [
      ['packets', (r: ReasonCount) => r.packets],
      ['bytes', (r: ReasonCount) => r.bytes],
    ] as const) {
      new Counter({
        name: `tcplane_datapath_${unit}_total`,
        help: `${unit[0]!.toUpperCase()}${unit.slice(1)} seen by the datapath, by hook (pod veth or uplink), direction (a pod's as it sees it) and reason`,
        labelNames: ['hook', 'direction', 'reason', 'verdict'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const r of dp.readMetrics()) {
            this.inc({ hook: r.hook, direction: r.direction, reason: reasonName(r.reason), verdict: isDrop(r.reason) ? 'drop' : 'pass' }, Number(pick(r)));
          }
        },
      });
    }
    new Gauge({
      name: 'tcplane_map_entries',
      help: 'Entries the agent keeps in each BPF map',
      labelNames: ['map'],
      registers: [this.registry],
      collect() {
        for (const m of dp.mirrors()) this.set({ map: m.map.raw.name }, m.size);
      },
    });
    // Per policy rule: the datapath's counters (tp_rulecnt_v1), named as observe names rules.
    for (const unit of ['packets', 'bytes'] as const) {
      new Counter({
        name: `tcplane_policy_rule_${unit}_total`,
        help: `${unit[0]!.toUpperCase()}${unit.slice(1)} of the connections each policy rule decided (both ways, drops included), by policy kind, namespace, name and rule`,
        labelNames: ['kind', 'namespace', 'policy', 'rule'],
        registers: [this.registry],
        collect() {
          this.reset();
          const names = ruleNames();
          for (const [id, c] of dp.ruleCounters.read()) {
            const ref = names.get(id);
            if (ref) this.inc({ kind: ref.kind, namespace: ref.namespace ?? '', policy: ref.name, rule: ref.rule ?? '' }, Number(c[unit]));
          }
        },
      });
    }
    new Counter({
      name: 'tcplane_verdict_events_total',
      help: 'Verdict events of the datapath (observe): emitted, held back by the per-endpoint rate limit (suppressed), or lost to a full ring buffer',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        this.reset();
        const s = dp.readEventStats();
        for (const outcome of ['emitted', 'suppressed', 'lost'] as const) this.inc({ outcome }, Number(s[outcome]));
      },
    });
  }

  /** Serves /metrics on host:port; resolves once listening. */
  async serve(address: string): Promise<Server> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i) || '0.0.0.0';
    const port = Number(address.slice(i + 1));
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found: try /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(`metrics: ${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server;
  }
}
