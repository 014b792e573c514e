/**
 * How `lab probe` prints its rows: `--json` exactly the public fields of DESIGN.md, in
 * their documented order; otherwise an aligned table and a count.
 */
import type { ProbeRow } from '../lab/probe.js';
import type { ServiceProbeRow } from '../lab/service-probe.js';
import { formatTable } from './table.js';

/** `lab probe --json`: one JSON array, exactly the public fields, in the documented order. */
export function probeJson(rows: readonly ProbeRow[]): string {
  return JSON.stringify(
    rows.map(({ from, to, port, protocol, family, connected, reason }) => ({
      from,
      to,
      port,
      protocol,
      family,
      connected,
      ...(reason === undefined ? {} : { reason }),
    })),
  );
}

/** `lab probe` without --json: an aligned table and a count. */
export function probeTable(rows: readonly ProbeRow[]): string {
  const head = ['FROM', 'TO', 'PORT', 'PROTO', 'FAMILY', 'RESULT'];
  const body = rows.map((r) => [r.from, r.to, String(r.port), r.protocol, `IPv${r.family}`, r.connected ? 'connected' : `no (${r.reason ?? 'failed'})`]);
  const ok = rows.filter((r) => r.connected).length;
  return `${formatTable(head, body)}\n${ok}/${rows.length} connected`;
}

/** `lab probe --to-service --json`: one array, exactly the public fields, in the documented order. */
export function serviceProbeJson(rows: readonly ServiceProbeRow[]): string {
  return JSON.stringify(
    rows.map(({ from, to, address, port, protocol, family, connected, backend, peer, reason }) => ({
      from,
      to,
      address,
      port,
      protocol,
      family,
      connected,
      backend,
      peer,
      ...(reason === undefined ? {} : { reason }),
    })),
  );
}

export function serviceProbeTable(rows: readonly ServiceProbeRow[]): string {
  const head = ['FROM', 'TO', 'ADDRESS', 'PORT', 'PROTO', 'RESULT', 'BACKEND', 'PEER'];
  const body = rows.map((r) => [
    r.from,
    r.to,
    r.address,
    String(r.port),
    r.protocol,
    r.connected ? 'connected' : `no (${r.reason ?? 'failed'})`,
    r.backend ?? '-',
    r.peer ?? '-',
  ]);
  return `${formatTable(head, body)}\n${rows.filter((r) => r.connected).length}/${rows.length} connected`;
}
