/**
 * The lab daemons' control protocol: newline-delimited JSON over a unix socket
 * (`/run/tcplane/lab/pods/<ns>_<name>.sock` for a pod, `/run/tcplane/lab/clients/<name>.sock`
 * for a client). Unix sockets are not tied to a network namespace, so the CLI in the root
 * namespace can ask a daemon, which lives in its pod's (or client's) namespace, to open
 * connections from there. One request per line, one response per line, in order.
 *
 *   {"op":"ping"}  →  {"ok":true,"name":"x/a","pid":123}
 *   {"op":"probe","timeoutMs":1000,"targets":[{"to":"y/b","ip":"10.244.2.10","port":80,"protocol":"TCP"}]}
 *     →  {"ok":true,"results":[{"to":"y/b","ip":"10.244.2.10","port":80,"protocol":"TCP","connected":true}]}
 *   a target with "whoami":true is a service-style probe: the daemon sends `WHOAMI\n`
 *   (TCP: once connected; UDP: one datagram on a connected socket) and counts it connected
 *   when a valid WHOAMI answer (whoami.ts) comes back; its result carries the answer's
 *   `pod` as "backend" and its `peer`, both null when not connected:
 *     {"to":"svc:x/web","ip":"10.244.240.10","port":80,"protocol":"TCP","whoami":true,
 *      "connected":true,"backend":"y/b","peer":"10.244.1.10:40123"}
 *   a result that did not connect carries "reason" (PROBE_REASONS)
 *   anything that fails  →  {"ok":false,"error":"..."}
 *
 * Fields of a target are echoed back in its result, so callers may key results by them.
 */
import { connect } from 'node:net';
import { z } from 'zod';

export const probeTarget = z.object({
  /** What the caller calls the target (`y/b`, `svc:x/web`); echoed back, not interpreted. */
  to: z.string(),
  ip: z.string(),
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP']),
  /** Ask the server who it is (WHOAMI) instead of checking an echo. */
  whoami: z.boolean().optional(),
});
export type ProbeTarget = z.infer<typeof probeTarget>;

export const controlRequest = z.discriminatedUnion('op', [
  z.object({ op: z.literal('ping') }),
  z.object({
    op: z.literal('probe'),
    targets: z.array(probeTarget).max(100_000),
    timeoutMs: z.number().int().min(1).max(60_000),
  }),
]);
export type ControlRequest = z.infer<typeof controlRequest>;

/**
 * Why a probe did not connect. An errno the list does not name is passed on as its code
 * (`EADDRNOTAVAIL`), so nothing is hidden.
 *   refused      TCP RST, or ICMP port unreachable (ECONNREFUSED)
 *   timeout      no answer within the probe's timeout
 *   reset        the connection was reset after it was established (ECONNRESET, EPIPE)
 *   unreachable  no route, or ICMP host / network unreachable (EHOSTUNREACH, ENETUNREACH)
 *   denied       refused locally (EPERM, EACCES: a local filter or a prohibit route)
 *   closed       closed by the peer before the answer was complete
 *   mismatch     an echo that did not return the bytes sent
 *   bad-answer   a WHOAMI answer that is not a valid answer line for this protocol
 */
export const PROBE_REASONS = ['refused', 'timeout', 'reset', 'unreachable', 'denied', 'closed', 'mismatch', 'bad-answer'] as const;

/** The reason for an error a probe socket raised (see PROBE_REASONS). */
export function probeReason(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'unreachable';
    case 'EPERM':
    case 'EACCES':
      return 'denied';
    default:
      return err.code ?? err.message;
  }
}

export const probeResult = probeTarget.extend({
  connected: z.boolean(),
  /** Why it did not connect (PROBE_REASONS); absent when connected. */
  reason: z.string().optional(),
  /** WHOAMI probes only: the answering server's `pod`, null when not connected. */
  backend: z.string().nullable().optional(),
  /** WHOAMI probes only: the address:port the server saw the probe come from, null when not connected. */
  peer: z.string().nullable().optional(),
});
export type ProbeResult = z.infer<typeof probeResult>;

const pingResponse = z.object({ ok: z.literal(true), name: z.string(), pid: z.number() });
const probeResponse = z.object({ ok: z.literal(true), results: z.array(probeResult) });
const errorResponse = z.object({ ok: z.literal(false), error: z.string() });

/** How many probes one daemon runs at once. */
export const PROBE_CONCURRENCY = 64;

/**
 * Sends one request to a lab daemon and returns its validated response.
 * @throws Error `lab daemon <socket>: detail` on connection failure, timeout or an error response.
 */
export async function controlCall(socket: string, req: { op: 'ping' }, timeoutMs: number): Promise<z.infer<typeof pingResponse>>;
export async function controlCall(socket: string, req: Extract<ControlRequest, { op: 'probe' }>, timeoutMs: number): Promise<z.infer<typeof probeResponse>>;
export async function controlCall(socket: string, req: ControlRequest, timeoutMs: number): Promise<unknown> {
  const line = await new Promise<string>((resolve, reject) => {
    const s = connect({ path: socket });
    let buf = '';
    const fail = (why: string) => {
      s.destroy();
      reject(new Error(`lab daemon ${socket}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify(req)}\n`));
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.end();
      resolve(buf.slice(0, nl));
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      fail(err.message);
    });
    s.on('close', () => {
      clearTimeout(timer);
      if (!buf.includes('\n')) fail('closed without answering');
    });
  });
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new Error(`lab daemon ${socket}: answered with something that is not JSON`);
  }
  const err = errorResponse.safeParse(json);
  if (err.success) throw new Error(`lab daemon ${socket}: ${err.data.error}`);
  const r = (req.op === 'ping' ? pingResponse : probeResponse).safeParse(json);
  if (!r.success) throw new Error(`lab daemon ${socket}: unexpected answer to ${req.op}`);
  return r.data;
}
