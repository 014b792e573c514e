/**
 * Asking every agent at once over core NATS: a request published with a reply inbox,
 * answered by each agent with one or more messages `{node, done, …}`; gathered until
 * every expected node has sent `done` or the wait runs out (a node that is down never
 * answers). Used by `observe` (history) and `get policies -o wide` (rule counters).
 */
import { createInbox, type NatsConnection } from '@nats-io/transport-node';

export interface GatherReply {
  node: string;
  done: boolean;
  error?: string;
  [k: string]: unknown;
}

export interface Gathered {
  replies: GatherReply[];
  /** Expected nodes that never sent `done`. */
  silent: string[];
}

export async function gather(nc: NatsConnection, subject: string, request: unknown, nodes: Iterable<string>, waitMs: number): Promise<Gathered> {
  const expected = new Set(nodes);
  const inbox = createInbox();
  const replies: GatherReply[] = [];
  const done = new Set<string>();
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const sub = nc.subscribe(inbox, {
    callback: (_err, msg) => {
      let m: GatherReply;
      try {
        m = JSON.parse(new TextDecoder().decode(msg.data)) as GatherReply;
      } catch {
        return;
      }
      if (typeof m?.node !== 'string') return;
      replies.push(m);
      if (m.done) done.add(m.node);
      if ([...expected].every((n) => done.has(n))) finish();
    },
  });
  if (expected.size === 0) finish();
  nc.publish(subject, JSON.stringify(request), { reply: inbox });
  const timer = setTimeout(finish, waitMs);
  await all;
  clearTimeout(timer);
  sub.unsubscribe();
  return { replies, silent: [...expected].filter((n) => !done.has(n)).sort() };
}
