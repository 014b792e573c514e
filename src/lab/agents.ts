/**
 * One `tcplane agent` per lab node, run inside the node's namespace, and the wait for
 * all of them to have enforced the lab's pods.
 *
 * The agent's contract: once it has programmed its node's pods it writes a tcplane-status
 * record (key = node) whose `revisions.pods` is the last tcplane-pods revision it
 * enforces and `endpoints` the number of local pods it manages.
 */
import { CLI_ENTRY } from '../paths.js';
import { statusRecord, type StatusRecord } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { nsenterArgs } from './exec.js';
import { logTail, spawnDetached } from './procs.js';
import { NATS_URL, UPLINK_IF, agentLog, agentTitle } from './topology.js';


export interface AgentNode {
  name: string;
  netns: string;
  podCIDRs: readonly string[];
  underlayIP: string;
  /** What the node first registers with (--node-labels). */
  labels?: Record<string, string>;
}

/** Where a lab agent serves Prometheus metrics: its node's underlay address, reachable from the root namespace. */
export const agentMetricsAddress = (node: AgentNode) => `${node.underlayIP}:${AGENT_METRICS_PORT}`;
export const AGENT_METRICS_PORT = 9962;

/** Whole words of an agent's cmdline that mark it as ours: its title, or its arguments before the title is set. */
export const agentMarkers = (node: string) => [agentTitle(node), `agent --node ${node} --nats`];

/**
 * Starts the agent of one node (with `extra` agent flags, as tests give them); its output
 * goes to /run/tcplane/lab/logs/agent-<node>.log.
 */
export async function startAgent(node: AgentNode, natsUrl = NATS_URL, extra: readonly string[] = []): Promise<{ pid: number; exited: Promise<string> }> {
  const argv = [
    process.execPath, CLI_ENTRY, 'agent', '--node', node.name, '--nats', natsUrl,
    '--pod-cidr', node.podCIDRs.join(','), '--metrics-address', agentMetricsAddress(node), '--uplink', UPLINK_IF, ...extra,
  ];
  const labels = Object.entries(node.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  if (labels.length > 0) argv.push('--node-labels', labels.join(','));
  return spawnDetached('nsenter', nsenterArgs(node.netns, argv), agentLog(node.name), {
    ...process.env,
    TCPLANE_PROCESS_TITLE: agentTitle(node.name),
  });
}

export interface AgentExpectation {
  node: string;
  /** Pods the lab placed on this node: the agent's `endpoints` must equal it. */
  pods: number;
}

export class AgentWaitError extends Error {
  override name = 'AgentWaitError';
  constructor(
    message: string,
    readonly lagging: string[],
  ) {
    super(message);
  }
}

/** Whether a node's status shows the lab's pods enforced; else why not. */
export function agentLag(status: StatusRecord | undefined, expect: AgentExpectation, podsRevision: number): string | undefined {
  if (!status) return 'no status yet';
  const rev = status.revisions.pods ?? 0;
  const why: string[] = [];
  if (rev < podsRevision) why.push(`pods revision ${rev} < ${podsRevision}`);
  if (status.endpoints !== expect.pods) why.push(`${status.endpoints}/${expect.pods} endpoints`);
  return why.length > 0 ? why.join(', ') : undefined;
}

/**
 * Waits until every node's tcplane-status shows `revisions.pods >= podsRevision` and
 * `endpoints` equal to its pod count.
 * @param abort rejects the wait early (e.g. when an agent process exits).
 * @throws AgentWaitError naming the lagging nodes and their logs, after timeoutMs.
 */
export async function waitForAgents(
  store: Store,
  expect: readonly AgentExpectation[],
  podsRevision: number,
  timeoutMs: number,
  abort?: Promise<never>,
): Promise<void> {
  const latest = new Map<string, StatusRecord>();
  const pending = () => expect.filter((e) => agentLag(latest.get(e.node), e, podsRevision) !== undefined);
  let wake!: () => void;
  let changed = new Promise<void>((r) => (wake = r));
  const watch = store.watch('status', statusRecord, (c) => {
    if (c.type === 'put') latest.set(c.key, c.value);
    else if (c.type === 'delete') latest.delete(c.key);
    wake();
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
  try {
    await Promise.race([watch.synced, timeout, ...(abort ? [abort] : [])]);
    while (pending().length > 0) {
      const woke = changed;
      if ((await Promise.race([woke, timeout, ...(abort ? [abort] : [])])) === 'timeout') {
        const lagging = pending();
        const lines = lagging.map((e) => `  ${e.node}: ${agentLag(latest.get(e.node), e, podsRevision)} (log ${agentLog(e.node)})`);
        throw new AgentWaitError(
          `agents did not enforce the lab's pods within ${timeoutMs} ms:\n${lines.join('\n')}`,
          lagging.map((e) => e.node),
        );
      }
      changed = new Promise<void>((r) => (wake = r));
    }
  } finally {
    clearTimeout(timer);
    watch.stop();
  }
}

/** A promise that rejects when any agent exits, naming it and quoting its log. */
export function agentExitWatch(agents: { node: string; exited: Promise<string> }[]): Promise<never> {
  const p = new Promise<never>((_, reject) => {
    for (const a of agents) {
      void a.exited.then(async (how) => {
        reject(new Error(`agent ${a.node} exited (${how}); log ${agentLog(a.node)}:\n${await logTail(agentLog(a.node))}`));
      });
    }
  });
  p.catch(() => undefined); // an exit after the wait is over is nobody's error
  return p;
}
