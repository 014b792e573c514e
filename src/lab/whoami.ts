/**
 * The WHOAMI exchange of lab servers (a public interface: tests and outside harnesses use
 * it to see which backend answered and which client address it saw).
 *
 *   TCP  the connection's payload begins with `WHOAMI`; the request is that first line,
 *        through its `\n`. The server answers one JSON line, then echoes as usual: bytes
 *        after the request line are echoed. A connection whose first bytes are not a
 *        prefix of `WHOAMI` echoes everything from its first byte.
 *   UDP  a datagram beginning with `WHOAMI` is answered with the JSON line; any other
 *        datagram is echoed.
 *
 *   {"pod":"x/a","local":"10.244.1.10:80","peer":"10.244.2.11:40123","protocol":"TCP"}\n
 *
 * `local` is the server's address:port the connection or datagram arrived on, `peer` the
 * remote address:port the server saw (so a test can tell SNAT from a preserved client
 * address). `pod` is `ns/name` for pods, the bare name for a lab client.
 *
 * Pure functions only: the pod daemon serves, probes ask, both use these.
 */
import { isIPv6 } from 'node:net';
import { z } from 'zod';

export const WHOAMI = 'WHOAMI';
const WHOAMI_BYTES = Buffer.from(WHOAMI);
/** What a probe sends. */
export const WHOAMI_REQUEST = `${WHOAMI}\n`;
/**
 * A first line that begins with WHOAMI but has no `\n` within this many bytes is not a
 * request: the connection echoes from its first byte (a server never buffers unbounded).
 */
export const WHOAMI_MAX_LINE = 1024;

/** What the first bytes of a TCP connection say. */
export type FirstLine =
  /** Still a possible request (`WHO`, or `WHOAMI` without its `\n` yet): wait for more bytes. */
  | { kind: 'more' }
  /** Not a request: echo everything received, from the first byte. */
  | { kind: 'echo' }
  /** A request: answer, then echo `rest` (the bytes after the request's `\n`). */
  | { kind: 'whoami'; rest: Buffer };

/**
 * Classifies the bytes a TCP connection has received so far (all of them, from the
 * first). Call again with more bytes while it answers `more`; at end of stream, treat
 * `more` as `echo` (an unfinished request is not one).
 */
export function splitWhoami(head: Buffer, maxLine = WHOAMI_MAX_LINE): FirstLine {
  const n = Math.min(head.length, WHOAMI_BYTES.length);
  if (!head.subarray(0, n).equals(WHOAMI_BYTES.subarray(0, n))) return { kind: 'echo' };
  if (head.length < WHOAMI_BYTES.length) return { kind: 'more' };
  const nl = head.indexOf(0x0a, WHOAMI_BYTES.length);
  if (nl >= 0 && nl < maxLine) return { kind: 'whoami', rest: head.subarray(nl + 1) };
  return head.length >= maxLine ? { kind: 'echo' } : { kind: 'more' };
}

/** True when a UDP datagram is a WHOAMI request. */
export const isWhoamiDatagram = (msg: Buffer) => msg.length >= WHOAMI_BYTES.length && msg.subarray(0, WHOAMI_BYTES.length).equals(WHOAMI_BYTES);

/** `10.244.1.10:80`, `[fd00::1]:80`. */
export const hostPort = (address: string, port: number) => (isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`);

export const whoamiAnswer = z.strictObject({
  pod: z.string().min(1),
  local: z.string().min(1),
  peer: z.string().min(1),
  protocol: z.enum(['TCP', 'UDP']),
});
export type WhoamiAnswer = z.infer<typeof whoamiAnswer>;

/** The answer line, `\n` included. Keys in the documented order. */
export function formatWhoami(a: WhoamiAnswer): string {
  return `${JSON.stringify({ pod: a.pod, local: a.local, peer: a.peer, protocol: a.protocol })}\n`;
}

/** Parses an answer line (with or without its `\n`); undefined when it is not a valid answer. */
export function parseWhoami(line: string): WhoamiAnswer | undefined {
  try {
    const r = whoamiAnswer.safeParse(JSON.parse(line));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
