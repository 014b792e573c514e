/**
 * The process behind one lab pod: started by `lab up` inside the pod's network namespace
 * (`nsenter --net=/run/netns/tp-pod-… -- node pod-daemon.js --pod <ns>/<name> '<config JSON>'`), titled
 * `tp-pod <ns>/<name>`. It serves
 *   - a TCP echo and a UDP echo on every declared port, bound to the pod's IP;
 *   - the control protocol (control.ts) on a unix socket, created last: once the socket
 *     accepts, every echo server is listening (that is how `lab up` knows it is ready).
 * Probes run from here, so they leave from the pod's own address and interface, each on
 * a fresh socket (fresh source port). SIGTERM closes everything and exits.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { z } from 'zod';
import { PROBE_CONCURRENCY, controlRequest, type ControlRequest, type ProbeResult, type ProbeTarget } from './control.js';
import { podTitle } from './topology.js';

const config = z.object({
  namespace: z.string(),
  name: z.string(),
  ip: z.string(),
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
  process.title = podTitle(cfg.namespace, cfg.name);
  const closers: (() => void)[] = [];
  for (const p of cfg.ports) closers.push(await (p.protocol === 'TCP' ? tcpEcho(cfg.ip, p.port) : udpEcho(cfg.ip, p.port)));
  closers.push(await controlServer(cfg));
  log(`ready: ${cfg.namespace}/${cfg.name} ${cfg.ip} ports ${cfg.ports.map((p) => `${p.port}/${p.protocol}`).join(',') || '-'}`);
  const stop = () => {
    for (const c of closers) c();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function tcpEcho(ip: string, port: number): Promise<() => void> {
  const server = createServer((sock) => {
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.pipe(sock);
  });
  return listen(server, { host: ip, port }, `TCP ${ip}:${port}`);
}

function udpEcho(ip: string, port: number): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', (err) => reject(new Error(`UDP ${ip}:${port}: ${err.message}`)));
    s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
    s.bind({ address: ip, port, exclusive: true }, () => {
      s.on('error', (err) => log(`UDP ${ip}:${port}: ${err.message}`));
      resolve(() => s.close());
    });
  });
}

function listen(server: Server, opts: { host?: string; port?: number; path?: string }, what: string): Promise<() => void> {
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
      return { ok: true, pod: `${cfg.namespace}/${cfg.name}`, pid: process.pid };
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
      results[i] = { ...t, ...r };
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, targets.length) }, worker));
  return results;
}

type Outcome = { connected: boolean; reason?: string };

/** Connected when the handshake completes and the bytes sent echo back. */
function probeTcp(t: ProbeTarget, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const token = randomBytes(8);
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
    s.on('connect', () => s.write(token));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= token.length) {
        finish(got.subarray(0, token.length).equals(token) ? { connected: true } : { connected: false, reason: 'mismatch' });
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => finish({ connected: false, reason: err.code ?? err.message }));
    s.on('close', () => finish({ connected: false, reason: 'closed' }));
  });
}

/** Connected when a datagram comes back from the target with the bytes sent. */
function probeUdp(t: ProbeTarget, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const token = randomBytes(8);
    const s: UdpSocket = createSocket('udp4');
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.close();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ connected: false, reason: 'timeout' }), timeoutMs);
    s.on('error', (err: NodeJS.ErrnoException) => finish({ connected: false, reason: err.code ?? err.message }));
    s.on('message', (msg) => {
      if (msg.equals(token)) finish({ connected: true });
    });
    // connect(): only the target's replies are delivered, and an ICMP port unreachable
    // surfaces as an error instead of a silent timeout.
    s.connect(t.port, t.ip, (err?: Error) => {
      if (err) return finish({ connected: false, reason: (err as NodeJS.ErrnoException).code ?? err.message });
      s.send(token, (e) => e && finish({ connected: false, reason: (e as NodeJS.ErrnoException).code ?? e.message }));
    });
  });
}

main().catch((err: Error) => {
  log(`pod daemon: ${err.message}`);
  process.exit(1);
});
