/**
 * The process behind one lab pod or client: started by `lab up` (or `lab pod start`)
 * inside the pod's network namespace (`nsenter --net=/run/netns/tp-pod-… -- node
 * pod-daemon.js --pod <ns>/<name> '<config JSON>'`), titled `tp-pod <ns>/<name>`; a
 * client's runs in tp-client-<name> with `--client <name>`, titled `tp-client <name>`,
 * and serves no ports. It serves
 *   - a TCP and a UDP server on every declared port, bound to each of the pod's IPs: they echo,
 *     and answer WHOAMI (whoami.ts) with the pod's name and the addresses they saw;
 *   - the control protocol (control.ts) on a unix socket, created last: once the socket
 *     accepts, every server is listening (that is how `lab up` knows it is ready).
 * Probes run from here, so they leave from the pod's own address and interface, each on
 * a fresh socket (fresh source port). SIGTERM closes everything and exits.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { unlinkSync } from 'node:fs';
import { connect, createServer, isIPv6, type Server } from 'node:net';
import { z } from 'zod';
import { PROBE_CONCURRENCY, controlRequest, probeReason, type ControlRequest, type ProbeResult, type ProbeTarget } from './control.js';
import { clientTitle, podTitle } from './topology.js';
import { WHOAMI_MAX_LINE, WHOAMI_REQUEST, formatWhoami, hostPort, isWhoamiDatagram, parseWhoami, splitWhoami } from './whoami.js';

const config = z.object({
  kind: z.enum(['pod', 'client']),
  /** `ns/name` of a pod, the bare name of a client: what WHOAMI answers as `pod`. */
  name: z.string(),
  /** IPv4 first; every server listens on each. */
  ips: z.array(z.string()).min(1),
  ports: z.array(z.object({ port: z.number().int(), protocol: z.enum(['TCP', 'UDP']) })),
  socket: z.string(),
});
type Config = z.infer<typeof config>;

/** An idle echo connection is dropped after this long, so nothing piles up. */
const IDLE_MS = 30_000;
/** A control request line longer than this is refused. */
const MAX_LINE = 16 << 20;

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
}

async function main(): Promise<void> {
  const cfg = config.parse(JSON.parse(process.argv[process.argv.length - 1] ?? ''));
  process.title = cfg.kind === 'pod' ? podTitle(...(cfg.name.split('/') as [string, string])) : clientTitle(cfg.name);
  const closers: (() => void)[] = [];
  for (const p of cfg.ports) {
    for (const ip of cfg.ips) closers.push(await (p.protocol === 'TCP' ? tcpServer(cfg, ip, p.port) : udpServer(cfg, ip, p.port)));
  }
  closers.push(await controlServer(cfg));
  log(`ready: ${cfg.kind} ${cfg.name} ${cfg.ips.join(' ')} ports ${cfg.ports.map((p) => `${p.port}/${p.protocol}`).join(',') || '-'}`);
  const stop = () => {
    for (const c of closers) c();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Echo, after a WHOAMI answer when the connection begins with a WHOAMI line. */
function tcpServer(cfg: Config, ip: string, port: number): Promise<() => void> {
  const server = createServer((sock) => {
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    sock.on('error', () => undefined);
    // Until the first bytes decide (splitWhoami), keep them; then answer or not, write
    // back what was kept that is to be echoed, and pipe the rest of the stream.
    let head = Buffer.alloc(0);
    const decide = (verdict: 'echo' | { rest: Buffer }) => {
      sock.off('data', onData).off('end', onEnd);
      if (verdict === 'echo') sock.write(head);
      else {
        sock.write(formatWhoami({ pod: cfg.name, local: hostPort(sock.localAddress!, sock.localPort!), peer: hostPort(sock.remoteAddress!, sock.remotePort!), protocol: 'TCP' }));
        if (verdict.rest.length > 0) sock.write(verdict.rest);
      }
      sock.pipe(sock); // attached synchronously: no chunk falls between the two listeners
    };
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const first = splitWhoami(head);
      if (first.kind === 'echo') decide('echo');
      else if (first.kind === 'whoami') decide({ rest: first.rest });
    };
    // The peer finished before the first line did (`WHO`, then FIN): not a request, echo it.
    const onEnd = () => sock.end(head);
    sock.on('data', onData).on('end', onEnd);
  });
  return listen(server, { host: ip, port, ipv6Only: isIPv6(ip) }, `TCP ${hostPort(ip, port)}`);
}

/** Echo, or the WHOAMI answer to a datagram that begins with WHOAMI. */
function udpServer(cfg: Config, ip: string, port: number): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: isIPv6(ip) ? 'udp6' : 'udp4', ipv6Only: isIPv6(ip) });
    s.once('error', (err) => reject(new Error(`UDP ${hostPort(ip, port)}: ${err.message}`)));
    s.on('message', (msg, rinfo) => {
      const answer = isWhoamiDatagram(msg)
        ? Buffer.from(formatWhoami({ pod: cfg.name, local: hostPort(ip, port), peer: hostPort(rinfo.address, rinfo.port), protocol: 'UDP' }))
        : msg;
      s.send(answer, rinfo.port, rinfo.address);
    });
    s.bind({ address: ip, port, exclusive: true }, () => {
      s.on('error', (err) => log(`UDP ${hostPort(ip, port)}: ${err.message}`));
      resolve(() => s.close());
    });
  });
}

function listen(server: Server, opts: { host?: string; port?: number; path?: string; ipv6Only?: boolean }, what: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`${what}: ${err.message}`)));
    server.listen(opts, () => resolve(() => server.close()));
  });
}

async function controlServer(cfg: Config): Promise<() => void> {
  try {
    unlinkSync(cfg.socket); // a stale socket from a crashed daemon
  } catch {
    /* none */
  }
  const server = createServer((conn) => {
    let buf = '';
    let chain = Promise.resolve();
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_LINE) return void conn.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        // Answer in order, one request at a time per connection.
        chain = chain.then(async () => {
          const answer = await handle(line, cfg);
          if (!conn.destroyed) conn.write(`${JSON.stringify(answer)}\n`);
        });
      }
    });
  });
  const close = await listen(server, { path: cfg.socket }, `control socket ${cfg.socket}`);
  return () => {
    close();
    try {
      unlinkSync(cfg.socket);
    } catch {
      /* gone */
    }
  };
}

async function handle(line: string, cfg: Config): Promise<unknown> {
  let req: ControlRequest;
  try {
    const r = controlRequest.safeParse(JSON.parse(line));
    if (!r.success) return { ok: false, error: `bad request: ${r.error.issues[0]?.message ?? 'invalid'}` };
    req = r.data;
  } catch {
    return { ok: false, error: 'bad request: not JSON' };
  }
  switch (req.op) {
    case 'ping':
      return { ok: true, name: cfg.name, pid: process.pid };
    case 'probe':
      return { ok: true, results: await probeAll(req.targets, req.timeoutMs) };
  }
}

/** Runs every probe, at most PROBE_CONCURRENCY at a time; results in target order. */
async function probeAll(targets: ProbeTarget[], timeoutMs: number): Promise<ProbeResult[]> {
  const results: ProbeResult[] = new Array(targets.length);
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const i = next++;
      const t = targets[i];
      const r = await (t.protocol === 'TCP' ? probeTcp(t, timeoutMs) : probeUdp(t, timeoutMs));
      // A WHOAMI probe always says who answered: null when nobody did.
      results[i] = { ...t, ...r, ...(t.whoami ? { backend: r.backend ?? null, peer: r.peer ?? null } : {}) };
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, targets.length) }, worker));
  return results;
}

type Outcome = { connected: boolean; reason?: string; backend?: string; peer?: string };

/**
 * What a probe sends, and how it judges the bytes that came back: an Outcome, or
 * undefined to wait for more (TCP) or for another datagram (UDP).
 */
interface Exchange {
  request: Buffer;
  judgeStream(got: Buffer): Outcome | undefined;
  judgeDatagram(msg: Buffer): Outcome | undefined;
}

/** Echo probes: 8 random bytes must come back. WHOAMI probes: a valid answer for this protocol. */
function exchangeFor(t: ProbeTarget): Exchange {
  if (t.whoami) {
    const judgeLine = (line: string): Outcome => {
      const a = parseWhoami(line);
      return a && a.protocol === t.protocol ? { connected: true, backend: a.pod, peer: a.peer } : { connected: false, reason: 'bad-answer' };
    };
    return {
      request: Buffer.from(WHOAMI_REQUEST),
      judgeStream: (got) => {
        const nl = got.indexOf(0x0a);
        if (nl >= 0) return judgeLine(got.subarray(0, nl).toString());
        return got.length > WHOAMI_MAX_LINE ? { connected: false, reason: 'bad-answer' } : undefined;
      },
      judgeDatagram: (msg) => judgeLine(msg.toString()),
    };
  }
  const token = randomBytes(8);
  return {
    request: token,
    judgeStream: (got) =>
      got.length < token.length ? undefined : got.subarray(0, token.length).equals(token) ? { connected: true } : { connected: false, reason: 'mismatch' },
    // The socket is connected: only the target's datagrams arrive; one that is not the echo is ignored.
    judgeDatagram: (msg) => (msg.equals(token) ? { connected: true } : undefined),
  };
}

/** Connected when the handshake completes and the answer is right (exchangeFor). */
function probeTcp(t: ProbeTarget, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const ex = exchangeFor(t);
    const s = connect({ host: t.ip, port: t.port });
    let got = Buffer.alloc(0);
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ connected: false, reason: 'timeout' }), timeoutMs);
    s.on('connect', () => s.write(ex.request));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const o = ex.judgeStream(got);
      if (o) finish(o);
    });
    s.on('error', (err: NodeJS.ErrnoException) => finish({ connected: false, reason: probeReason(err) }));
    s.on('close', () => finish({ connected: false, reason: 'closed' }));
  });
}

/** Connected when a datagram comes back from the target with the right answer (exchangeFor). */
function probeUdp(t: ProbeTarget, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const ex = exchangeFor(t);
    const s: UdpSocket = createSocket(isIPv6(t.ip) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.close();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ connected: false, reason: 'timeout' }), timeoutMs);
    s.on('error', (err: NodeJS.ErrnoException) => finish({ connected: false, reason: probeReason(err) }));
    s.on('message', (msg) => {
      const o = ex.judgeDatagram(msg);
      if (o) finish(o);
    });
    // connect(): only the target's replies are delivered, and an ICMP port unreachable
    // surfaces as an error (refused) instead of a silent timeout.
    s.connect(t.port, t.ip, (err?: Error) => {
      if (err) return finish({ connected: false, reason: probeReason(err) });
      s.send(ex.request, (e) => e && finish({ connected: false, reason: probeReason(e) }));
    });
  });
}

main().catch((err: Error) => {
  log(`lab daemon: ${err.message}`);
  process.exit(1);
});
