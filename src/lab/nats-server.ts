/**
 * The lab's embedded store: Debian's nats-server with JetStream, bound to the root
 * namespace's underlay address (10.250.0.1), so the CLI reaches it directly and agents
 * reach it over the underlay from their node namespaces.
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { logTail, spawnDetached } from './procs.js';
import { HOST_IP, LOG_DIR, NATS_DIR, NATS_PORT, NATS_SERVER_NAME } from './topology.js';

export const NATS_LOG = `${LOG_DIR}/nats.log`;
/** Whole words of the server's cmdline that mark it as the lab's. */
export const NATS_MARKERS = [NATS_SERVER_NAME];

/**
 * Starts `nats-server -js -a 10.250.0.1 -p 4222 -sd <state>/nats -n tp-lab-nats` and
 * waits until it accepts TCP connections.
 * @throws Error naming the log when it exits or does not listen within timeoutMs.
 */
export async function startNats(timeoutMs = 10_000): Promise<{ pid: number }> {
  const args = ['-js', '-a', HOST_IP, '-p', String(NATS_PORT), '-sd', NATS_DIR, '-n', NATS_SERVER_NAME];
  const proc = await spawnDetached('nats-server', args, NATS_LOG);
  let exited: string | undefined;
  void proc.exited.then((how) => (exited = how));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) break;
    if (await accepts(HOST_IP, NATS_PORT)) return { pid: proc.pid };
    await sleep(20);
  }
  const why = exited ? `exited (${exited})` : `does not accept connections after ${timeoutMs} ms`;
  throw new Error(`nats-server ${why}; log ${NATS_LOG}:\n${await logTail(NATS_LOG)}`);
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
