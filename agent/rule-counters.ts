/**
 * Answers `get policies -o wide`'s request for this node's per-rule counters
 * (src/store/counters.ts): every rule its policy entries use, named, with the packets
 * and bytes the datapath counted under it.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { PolicyRef } from '../src/datapath/desired.js';
import type { RuleCounters } from '../src/datapath/rule-counters.js';
import { COUNTERS_SUBJECT, type RuleCounterRow } from '../src/store/counters.js';

/** This node's rows: each counted rule that has a name. */
export function ruleCounterRows(counters: RuleCounters, names: ReadonlyMap<number, PolicyRef>): RuleCounterRow[] {
  const rows: RuleCounterRow[] = [];
  for (const [id, c] of counters.read()) {
    const ref = names.get(id);
    if (ref) rows.push({ ...ref, packets: String(c.packets), bytes: String(c.bytes) });
  }
  return rows;
}

export function serveRuleCounters(nc: NatsConnection, node: string, counters: RuleCounters, names: () => ReadonlyMap<number, PolicyRef>, log: Logger) {
  return nc.subscribe(COUNTERS_SUBJECT, {
    callback: (err, msg) => {
      if (err) return void log.warn({ err }, 'rule counter subscription');
      if (!msg.reply) return;
      try {
        nc.publish(msg.reply, JSON.stringify({ node, done: true, rules: ruleCounterRows(counters, names()) }));
      } catch (e) {
        nc.publish(msg.reply, JSON.stringify({ node, done: true, rules: [], error: (e as Error).message }));
      }
    },
  });
}
