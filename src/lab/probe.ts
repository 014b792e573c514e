/**
 * Probes from inside the lab. Every pod and every client runs a daemon (pod-daemon.ts)
 * that opens connections from its own namespace on request (control.ts):
 *
 *   probeTargets(state, from, targets, timeoutMs)   the mechanics, for any caller: from a
 *       pod (`ns/name`) or a client (bare name), to any address, as echo probes or, with
 *       `whoami: true`, as service-style probes that report the answering backend and the
 *       address it saw (what `lab probe --to-service` builds on);
 *   labProbe(state, opts)                           `lab probe`: every running pod → every
 *       running pod (itself included), on each port the *target* declares, in each
 *       family both have (`--families`).
 *
 * All sources probe at once and each daemon with bounded concurrency, so a full probe
 * takes about one timeout however many pods there are. Stopped pods (`lab pod stop`) are
 * neither sources nor targets.
 */
import { isIPv6 } from 'node:net';
import { controlCall, PROBE_CONCURRENCY, type ProbeResult, type ProbeTarget } from './control.js';
import type { LabState } from './state.js';

export type { ProbeResult, ProbeTarget } from './control.js';

/** One line of `lab probe --json`. `reason` only when not connected. */
export interface ProbeRow {
  from: string;
  to: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  /** The family probed: a pair is probed in each family both sides have. */
  family: 4 | 6;
  connected: boolean;
  reason?: string;
}

/** Where probes can start: a running pod (`from` = `ns/name`) or a client (`from` = its bare name). */
export interface ProbeSource {
  from: string;
  kind: 'pod' | 'client';
  ip: string;
  /** Every family's address, IPv4 first. */
  ips: string[];
  socket: string;
}

/** Every place probes can start from now: running pods first, then clients, in spec order. */
export function probeSources(state: LabState): ProbeSource[] {
  return [
    ...state.pods.filter((p) => !p.stopped).map((p) => ({ from: p.key, kind: 'pod' as const, ip: p.ip, ips: p.ips, socket: p.socket })),
    ...state.clients.map((c) => ({ from: c.name, kind: 'client' as const, ip: c.ip, ips: c.ips, socket: c.socket })),
  ];
}

/**
 * Runs `targets` from one source, in its namespace; results in target order, each with
 * the target's fields, `connected`, `reason` when not connected, and for `whoami`
 * targets `backend` and `peer` (null when not connected).
 *
 *   await probeTargets(state, 'outside', [{to: 'svc:x/web', ip: '10.250.0.10', port: 30080, protocol: 'TCP', whoami: true}])
 *
 * @param from a pod as `ns/name` or a client by its bare name
 * @throws Error when `from` is no running pod or client of the lab, or its daemon does not
 *   answer (a dead daemon is a broken lab, not a denied connection)
 */
export async function probeTargets(state: LabState, from: string, targets: readonly ProbeTarget[], timeoutMs = 1000): Promise<ProbeResult[]> {
  const src = probeSources(state).find((s) => s.from === from);
  if (!src) {
    const pod = state.pods.find((p) => p.key === from);
    if (pod?.stopped) throw new Error(`lab probe: pod ${from} is stopped (start it with \`tcplane lab pod start ${from}\`)`);
    const names = probeSources(state).map((s) => s.from);
    throw new Error(`lab probe: no pod or client ${from} in the lab (running pods and clients: ${names.join(', ') || 'none'})`);
  }
  if (targets.length === 0) return [];
  // Waves of PROBE_CONCURRENCY probes, each at most one timeout, plus slack.
  const bound = Math.ceil(targets.length / PROBE_CONCURRENCY) * timeoutMs + 5000;
  try {
    return (await controlCall(src.socket, { op: 'probe', targets: [...targets], timeoutMs }, bound)).results;
  } catch (err) {
    throw new Error(`lab probe: ${src.kind} ${from}: ${(err as Error).message} (is the lab broken? try \`tcplane lab down\` and up again)`, {
      cause: err,
    });
  }
}

export interface ProbeOptions {
  /** Only these ports (default: every declared port). */
  ports?: readonly number[];
  /** Only these protocols (default: both). */
  protocols?: readonly ('TCP' | 'UDP')[];
  /** Only these families (default: every family the lab has). */
  families?: readonly (4 | 6)[];
  /** Per probe; default 1000. */
  timeoutMs?: number;
}

/**
 * `lab probe`: every running pod → every running pod, itself included, on each port the
 * target declares. Rows come sorted by from, to, port, protocol.
 * @throws Error naming the pod whose daemon does not answer.
 */
export async function labProbe(state: LabState, opts: ProbeOptions = {}): Promise<ProbeRow[]> {
  const timeoutMs = opts.timeoutMs ?? 1000;
  const families = state.families.filter((f) => !opts.families || opts.families.includes(f));
  const running = state.pods.filter((p) => !p.stopped);
  const answers = await Promise.all(
    running.map(async (src) => {
      const targets: ProbeTarget[] = [];
      for (const family of families) {
        if (!addressOf(src.ips, family)) continue;
        for (const dst of running) {
          const ip = addressOf(dst.ips, family);
          if (!ip) continue;
          for (const p of dst.ports) {
            if (opts.ports && !opts.ports.includes(p.port)) continue;
            if (opts.protocols && !opts.protocols.includes(p.protocol)) continue;
            targets.push({ to: dst.key, ip, port: p.port, protocol: p.protocol });
          }
        }
      }
      return (await probeTargets(state, src.key, targets, timeoutMs)).map(
        ({ to, ip, port, protocol, connected, reason }): ProbeRow => ({
          from: src.key,
          to,
          port,
          protocol,
          family: familyOf(ip),
          connected,
          ...(connected || reason === undefined ? {} : { reason }),
        }),
      );
    }),
  );
  return answers.flat().sort(compareRows);
}

/** The family of an address (the lab's addresses are valid by construction). */
export const familyOf = (ip: string): 4 | 6 => (isIPv6(ip) ? 6 : 4);

/** The address of `family` among `ips`, if there is one. */
export const addressOf = (ips: readonly string[], family: 4 | 6) => ips.find((ip) => familyOf(ip) === family);

function compareRows(a: ProbeRow, b: ProbeRow): number {
  return cmp(a.from, b.from) || cmp(a.to, b.to) || a.port - b.port || cmp(a.protocol, b.protocol) || a.family - b.family;
}
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
