/**
 * `lab probe`: every pod → every other pod, on each port the *target* declares. Each
 * source pod's daemon runs its probes from inside its namespace (control.ts), all
 * daemons at once and each with bounded concurrency, so a full probe takes about one
 * timeout however many pods there are.
 */
import { controlCall, PROBE_CONCURRENCY, type ProbeTarget } from './control.js';
import type { LabState } from './state.js';
import { formatTable } from '../cli/table.js';

/** One line of `lab probe --json`. */
export interface ProbeRow {
  from: string;
  to: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  connected: boolean;
}

export interface ProbeOptions {
  /** Only these ports (default: every declared port). */
  ports?: readonly number[];
  /** Only these protocols (default: both). */
  protocols?: readonly ('TCP' | 'UDP')[];
  /** Per probe; default 1000. */
  timeoutMs?: number;
}

/**
 * Probes the running lab. Rows come sorted by from, to, port, protocol; `reason` says
 * why a probe did not connect (`timeout`, `ECONNREFUSED`, …; not part of --json).
 * @throws Error naming the pod whose daemon does not answer: a dead daemon is a broken
 *   lab, not a denied connection.
 */
export async function labProbe(state: LabState, opts: ProbeOptions = {}): Promise<(ProbeRow & { reason?: string })[]> {
  const timeoutMs = opts.timeoutMs ?? 1000;
  const perSource = state.pods.map((src) => {
    const targets: ProbeTarget[] = [];
    for (const dst of state.pods) {
      if (dst.key === src.key) continue;
      for (const p of dst.ports) {
        if (opts.ports && !opts.ports.includes(p.port)) continue;
        if (opts.protocols && !opts.protocols.includes(p.protocol)) continue;
        targets.push({ to: dst.key, ip: dst.ip, port: p.port, protocol: p.protocol });
      }
    }
    return { src, targets };
  });
  const answers = await Promise.all(
    perSource.map(async ({ src, targets }) => {
      if (targets.length === 0) return [];
      // Waves of PROBE_CONCURRENCY probes, each at most one timeout, plus slack.
      const bound = Math.ceil(targets.length / PROBE_CONCURRENCY) * timeoutMs + 5000;
      try {
        const r = await controlCall(src.socket, { op: 'probe', targets, timeoutMs }, bound);
        return r.results.map((x) => ({ from: src.key, ...x }));
      } catch (err) {
        throw new Error(`lab probe: pod ${src.key}: ${(err as Error).message} (is the lab broken? try \`tcplane lab down\` and up again)`, {
          cause: err,
        });
      }
    }),
  );
  const rows = answers.flat().map(({ from, to, port, protocol, connected, reason }) => ({
    from,
    to,
    port,
    protocol,
    connected,
    ...(reason === undefined ? {} : { reason }),
  }));
  return rows.sort(compareRows);
}

function compareRows(a: ProbeRow, b: ProbeRow): number {
  return cmp(a.from, b.from) || cmp(a.to, b.to) || a.port - b.port || cmp(a.protocol, b.protocol);
}
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `lab probe --json`: one JSON array, exactly the public fields. */
export function probeJson(rows: readonly ProbeRow[]): string {
  return JSON.stringify(rows.map(({ from, to, port, protocol, connected }) => ({ from, to, port, protocol, connected })));
}

/** `lab probe` without --json: an aligned table and a count. */
export function probeTable(rows: readonly (ProbeRow & { reason?: string })[]): string {
  const head = ['FROM', 'TO', 'PORT', 'PROTO', 'RESULT'];
  const body = rows.map((r) => [r.from, r.to, String(r.port), r.protocol, r.connected ? 'connected' : `no (${r.reason ?? 'failed'})`]);
  const ok = rows.filter((r) => r.connected).length;
  return `${formatTable(head, body)}\n${ok}/${rows.length} connected`;
}
