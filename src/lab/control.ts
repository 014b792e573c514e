/**
 * The pod daemons' control protocol: newline-delimited JSON over a unix socket
 * (`/run/tcplane/lab/pods/<ns>_<name>.sock`). Unix sockets are not tied to a network
 * namespace, so the CLI in the root namespace can ask a daemon, which lives in its pod's
 * namespace, to open connections from there. One request per line, one response per
 * line, in order.
 *
 *   {"op":"ping"}  →  {"ok":true,"pod":"x/a","pid":123}
 *   {"op":"probe","timeoutMs":1000,"targets":[{"to":"y/b","ip":"10.244.2.10","port":80,"protocol":"TCP"}]}
 *     →  {"ok":true,"results":[{"to":"y/b","ip":"10.244.2.10","port":80,"protocol":"TCP","connected":true}]}
 *   anything that fails  →  {"ok":false,"error":"..."}
 */
import { connect } from 'node:net';
import { z } from 'zod';

export const probeTarget = z.object({
  to: z.string(),
  ip: z.string(),
  port: z.number().int().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP']),
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

export const probeResult = probeTarget.extend({
  connected: z.boolean(),
  /** Why it did not connect: `timeout`, `ECONNREFUSED`, `mismatch`, … */
  reason: z.string().optional(),
});
export type ProbeResult = z.infer<typeof probeResult>;

const pingResponse = z.object({ ok: z.literal(true), pod: z.string(), pid: z.number() });
const probeResponse = z.object({ ok: z.literal(true), results: z.array(probeResult) });
const errorResponse = z.object({ ok: z.literal(false), error: z.string() });

/** How many probes one daemon runs at once. */
export const PROBE_CONCURRENCY = 64;

/**
 * Sends one request to a pod daemon and returns its validated response.
 * @throws Error `pod daemon <socket>: detail` on connection failure, timeout or an error response.
 */
export async function controlCall(socket: string, req: { op: 'ping' }, timeoutMs: number): Promise<z.infer<typeof pingResponse>>;
export async function controlCall(socket: string, req: Extract<ControlRequest, { op: 'probe' }>, timeoutMs: number): Promise<z.infer<typeof probeResponse>>;
export async function controlCall(socket: string, req: ControlRequest, timeoutMs: number): Promise<unknown> {
  const line = await new Promise<string>((resolve, reject) => {
    const s = connect({ path: socket });
    let buf = '';
    const fail = (why: string) => {
      s.destroy();
      reject(new Error(`pod daemon ${socket}: ${why}`));
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
    throw new Error(`pod daemon ${socket}: answered with something that is not JSON`);
  }
  const err = errorResponse.safeParse(json);
  if (err.success) throw new Error(`pod daemon ${socket}: ${err.data.error}`);
  const r = (req.op === 'ping' ? pingResponse : probeResponse).safeParse(json);
  if (!r.success) throw new Error(`pod daemon ${socket}: unexpected answer to ${req.op}`);
  return r.data;
}
