/**
 * Starting and stopping the lab's daemons (pod-daemon.ts): one per pod, serving its
 * declared ports, and one per client, serving none. Each runs in its own network
 * namespace and answers the control protocol (control.ts) on its socket once ready.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { controlCall } from './control.js';
import { nsenterArgs } from './exec.js';
import { argvMatches, logTail, procArgv, spawnDetached, terminate } from './procs.js';
import type { LabProcess } from './state.js';
import { clientLog, clientTitle, podLog, podTitle } from './topology.js';

const READY_MS = 10_000;
const DAEMON = fileURLToPath(new URL('./pod-daemon.js', import.meta.url));

/** Whole words of a pod daemon's cmdline: its title, or its arguments before the title is set. */
export const podMarkers = (key: string) => [podTitle(...(key.split('/') as [string, string])), `--pod ${key}`];
export const clientMarkers = (name: string) => [clientTitle(name), `--client ${name}`];

export interface DaemonSpec {
  kind: 'pod' | 'client';
  /** `ns/name` of a pod, the bare name of a client. */
  name: string;
  netns: string;
  /** Its addresses, IPv4 first: the servers listen on each. */
  ips: readonly string[];
  ports: readonly { port: number; protocol: 'TCP' | 'UDP' }[];
  socket: string;
}

/**
 * Starts a daemon in its namespace, records it (`record`, before waiting, so a failed
 * start is still cleaned up) and waits until its control socket answers.
 * @throws Error naming the daemon and quoting its log when it exits or stays silent.
 */
export async function startDaemon(d: DaemonSpec, record: (p: LabProcess) => Promise<void>): Promise<LabProcess> {
  const cfg = { kind: d.kind, name: d.name, ips: d.ips, ports: d.ports.map(({ port, protocol }) => ({ port, protocol })), socket: d.socket };
  const argv = [process.execPath, DAEMON, `--${d.kind}`, d.name, JSON.stringify(cfg)];
  const log = d.kind === 'pod' ? podLog(...(d.name.split('/') as [string, string])) : clientLog(d.name);
  const proc = await spawnDetached('nsenter', nsenterArgs(d.netns, argv), log);
  const entry: LabProcess = { pid: proc.pid, role: d.kind, name: d.name, markers: d.kind === 'pod' ? podMarkers(d.name) : clientMarkers(d.name) };
  await record(entry);
  let exited: string | undefined;
  void proc.exited.then((how) => (exited = how));
  const deadline = Date.now() + READY_MS;
  while (Date.now() < deadline && !exited) {
    try {
      await controlCall(d.socket, { op: 'ping' }, 1000);
      return entry;
    } catch {
      await sleep(20);
    }
  }
  const why = exited ? `exited (${exited})` : `not ready after ${READY_MS} ms`;
  throw new Error(`${d.kind} ${d.name}: daemon ${why}; log ${log}:\n${await logTail(log)}`);
}

/**
 * Stops a daemon the lab started: SIGTERM (it closes its servers and socket), SIGKILL
 * after a grace. Only when the PID still runs what we started (its markers).
 * @returns false when it could not be killed.
 */
export async function stopDaemon(p: LabProcess): Promise<boolean> {
  const argv = await procArgv(p.pid);
  if (!argv || !argvMatches(argv, p.markers)) return true; // gone already
  return (await terminate([p.pid])).length === 0;
}
