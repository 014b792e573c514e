/**
 * `tcplane lab …`: one machine holding a cluster of network namespaces (src/lab/).
 *
 *   lab up -f LAB.yaml [--no-agents] [--timeout-ms N]
 *   lab down
 *   lab probe [--json] [--to-service] [--ports 80,443] [--protocols TCP,UDP] [--families 4,6] [--timeout-ms N]
 *   lab exec NS/POD|CLIENT -- CMD ARGS…
 *   lab label pod NS/POD KEY=VALUE… [KEY-]
 *   lab label namespace NS KEY=VALUE… [KEY-]
 *   lab label node NODE KEY=VALUE… [KEY-]
 *   lab pod ready NS/POD true|false
 *   lab pod stop NS/POD [--grace-seconds N]
 *   lab pod start NS/POD
 *
 * Every command but `up` and `down` finds the lab through its state file and says so
 * when none is up. Results go to stdout, progress to stderr.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { Store } from '../store/store.js';
import { labDown } from '../lab/down.js';
import { nsenterArgs } from '../lab/exec.js';
import { labelNamespace, labelNode, labelPod, parseLabelChanges, type LabelChanges } from '../lab/label.js';
import { setPodReady, startPod, stopPod } from '../lab/pods.js';
import { labProbe } from '../lab/probe.js';
import { probeJson, probeTable, serviceProbeJson, serviceProbeTable } from './probe-output.js';
import { readLabSpec } from '../lab/spec.js';
import { readLabState } from '../lab/state.js';
import { labUp } from '../lab/up.js';
import { labProbeServices } from '../lab/service-probe.js';
import { refreshExternalRoutes } from '../lab/external-routes.js';
import { storedServices } from '../services/stored.js';

const say = (msg: string) => process.stderr.write(`${msg}\n`);

function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer (milliseconds)');
  return n;
}

function seconds(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n > 86_400) throw new InvalidArgumentError('expected whole seconds, 0 to 86400');
  return n;
}

function podArg(cmd: string, pod: string): string {
  if (!/^[^/]+\/[^/]+$/.test(pod)) throw new Error(`${cmd}: ${JSON.stringify(pod)}: expected NS/POD`);
  return pod;
}

function portList(v: string): number[] {
  return v.split(',').map((s) => {
    const n = Number(s.trim());
    if (!/^\d+$/.test(s.trim()) || n < 1 || n > 65535) throw new InvalidArgumentError(`${JSON.stringify(s)} is not a port (1-65535)`);
    return n;
  });
}

function protocolList(v: string): ('TCP' | 'UDP')[] {
  return v.split(',').map((s) => {
    const p = s.trim().toUpperCase();
    if (p !== 'TCP' && p !== 'UDP') throw new InvalidArgumentError(`${JSON.stringify(s)} is not a protocol (TCP, UDP)`);
    return p;
  });
}

function familyList(v: string): (4 | 6)[] {
  return v.split(',').map((s) => {
    const f = s.trim().replace(/^ipv/i, '');
    if (f !== '4' && f !== '6') throw new InvalidArgumentError(`${JSON.stringify(s)} is not an address family (4, 6)`);
    return Number(f) as 4 | 6;
  });
}

/** The lab's store, for the duration of `fn`. */
async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const state = await readLabState();
  const store = await Store.connect(state.natsUrl, { name: 'tcplane-lab-cli', timeoutMs: 5000 });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('a cluster of network namespaces on this machine: nodes, pods, an embedded NATS, one agent per node')
    .enablePositionalOptions();

  lab
    .command('up')
    .description('build the lab described by LAB.yaml')
    .requiredOption('-f, --file <LAB.yaml>', 'lab spec: nodes, namespaces, pods, clients')
    .option('--no-agents', 'do not start agents (plain routing: the benchmark baseline)')
    .option('--timeout-ms <n>', 'how long to wait for the agents to enforce the pods', positiveInt, 60_000)
    .action(async (o: { file: string; agents: boolean; timeoutMs: number }) => {
      const plan = await readLabSpec(o.file);
      const { state, timings } = await labUp(plan, { agents: o.agents, agentTimeoutMs: o.timeoutMs, log: say });
      const phases = Object.entries(timings)
        .filter(([k]) => k !== 'total')
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      process.stdout.write(
        `lab up: ${state.nodes.length} nodes, ${state.namespaces.length} namespaces, ${state.pods.length} pods` +
          `${state.clients.length > 0 ? `, ${state.clients.length} client${state.clients.length === 1 ? '' : 's'}` : ''}` +
          `${o.agents ? ', agents enforcing' : ', no agents'} in ${timings.total} ms (${phases}); store ${state.natsUrl}\n`,
      );
    });

  lab
    .command('down')
    .description('remove everything the lab made (idempotent; works after a crash)')
    .action(async () => {
      const r = await labDown();
      if (r.leftovers.length > 0) throw new Error(`lab down: could not remove: ${r.leftovers.join(', ')}`);
      const what = r.netns.length + r.processes > 0 ? `removed ${r.netns.length} namespaces, ${r.processes} processes` : 'no lab was up';
      process.stdout.write(`lab down: ${what}\n`);
    });

  lab
    .command('probe')
    .description('try every running pod → every running pod (itself included) on each port the target declares')
    .option('--json', 'print one JSON array of {from, to, port, protocol, family, connected[, reason]}')
    .option('--to-service', 'probe every service frontend instead: ClusterIPs from pods, NodePorts and external IPs from clients (rows add address, backend, peer)')
    .option('--ports <list>', 'only these ports (comma-separated)', portList)
    .option('--protocols <list>', 'only these protocols (TCP,UDP)', protocolList)
    .option('--families <list>', 'only these address families (4,6; default: every family the lab has)', familyList)
    .option('--timeout-ms <n>', 'per probe', positiveInt, 1000)
    .action(async (o: { json?: boolean; toService?: boolean; ports?: number[]; protocols?: ('TCP' | 'UDP')[]; families?: (4 | 6)[]; timeoutMs: number }) => {
      const state = await readLabState();
      if (o.toService) {
        const { services } = await withStore((store) => storedServices(store));
        if (services.length === 0 && !o.json) process.stderr.write('lab probe --to-service: no services in the store, nothing to probe (apply one, or give LAB.yaml services:)\n');
        await refreshExternalRoutes(state, services); // the lab's load balancer follows health checks
        const rows = await labProbeServices(state, services, { ports: o.ports, protocols: o.protocols, families: o.families, timeoutMs: o.timeoutMs });
        process.stdout.write(`${o.json ? serviceProbeJson(rows) : serviceProbeTable(rows)}\n`);
        return;
      }
      const rows = await labProbe(state, { ports: o.ports, protocols: o.protocols, families: o.families, timeoutMs: o.timeoutMs });
      process.stdout.write(`${o.json ? probeJson(rows) : probeTable(rows)}\n`);
    });

  lab
    .command('exec')
    .description("run a command in a pod's or a client's network namespace; exits with its code")
    .argument('<name>', 'NS/POD for a pod, a bare name for a client')
    .argument('<command...>', 'command and arguments (after --)')
    .passThroughOptions()
    .action(async (name: string, argv: string[]) => {
      const state = await readLabState();
      const names = `pods: ${state.pods.map((x) => x.key).join(', ') || 'none'}; clients: ${state.clients.map((c) => c.name).join(', ') || 'none'}`;
      const netns = name.includes('/') ? state.pods.find((x) => x.key === name)?.netns : state.clients.find((c) => c.name === name)?.netns;
      if (!netns) throw new Error(`lab exec: no ${name.includes('/') ? 'pod' : 'client'} ${name} in the lab (${names})`);
      process.exitCode = await execIn(netns, argv[0] === '--' ? argv.slice(1) : argv);
    });

  const label = lab.command('label').description('change labels at run time (agents follow through the store)');
  type Labeler = (s: Store, name: string, ch: LabelChanges) => Promise<{ labels: Record<string, string>; revision: number }>;
  const labelCommand = (kind: 'pod' | 'namespace' | 'node', arg: string, write: Labeler, check?: (name: string) => void) =>
    label
      .command(kind)
      .argument(`<${kind}>`, arg)
      .argument('<changes...>', 'KEY=VALUE to set, KEY- to remove')
      .action(async (name: string, changes: string[]) => {
        check?.(name);
        const ch = parseLabelChanges(changes);
        const r = await withStore((s) => write(s, name, ch));
        process.stdout.write(`${kind} ${name} labeled: ${formatLabels(r.labels)} (revision ${r.revision})\n`);
      });
  labelCommand('pod', 'NS/POD', labelPod, (key) => podArg('lab label pod', key));
  labelCommand('namespace', 'NS', labelNamespace);
  labelCommand('node', 'NODE', labelNode);

  const pod = lab.command('pod').description("change a pod's readiness, stop it and start it again, as a cluster does");
  pod
    .command('ready')
    .description("set `ready` in the pod's store record (agents follow)")
    .argument('<pod>', 'NS/POD')
    .argument('<ready>', 'true or false')
    .action(async (key: string, ready: string) => {
      podArg('lab pod ready', key);
      if (ready !== 'true' && ready !== 'false') throw new Error(`lab pod ready: ${JSON.stringify(ready)}: expected true or false`);
      const r = await withStore((s) => setPodReady(s, key, ready === 'true'));
      process.stdout.write(`pod ${key} ready: ${ready} (revision ${r.revision})\n`);
    });
  pod
    .command('stop')
    .description(
      'the pod turns terminating (not ready, its servers still answer), then is removed: record deleted, ' +
        'daemon stopped (its namespace stays for `lab pod start`). Blocks for the grace period and then removes ' +
        'the pod, as `kubectl delete` waits by default; Ctrl-C or SIGTERM during the wait removes it at once ' +
        'and exits 130 or 143. Stopping a stopped pod is an error.',
    )
    .argument('<pod>', 'NS/POD')
    .option('--grace-seconds <n>', 'how long the pod stays terminating before it is removed', seconds, 0)
    .action(async (key: string, o: { graceSeconds: number }) => {
      podArg('lab pod stop', key);
      const abort = new AbortController();
      let signal: NodeJS.Signals | undefined;
      // Handled until the pod is removed: a signal ends the wait, never the removal.
      const onSignal = (sig: NodeJS.Signals) => {
        signal ??= sig;
        abort.abort();
      };
      process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
      try {
        const r = await withStore((s) => stopPod(s, key, { graceMs: o.graceSeconds * 1000, signal: abort.signal, log: say }));
        process.stdout.write(`pod ${key} stopped${r.early ? ` (${signal} ended the grace period early)` : ''}\n`);
        if (r.early && signal) process.exitCode = 128 + constants.signals[signal];
      } finally {
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      }
    });
  pod
    .command('start')
    .description('bring a stopped pod back as LAB.yaml declares it: same servers, ready, declared labels. Starting a pod that is not stopped is an error.')
    .argument('<pod>', 'NS/POD')
    .action(async (key: string) => {
      podArg('lab pod start', key);
      const r = await withStore((s) => startPod(s, key));
      process.stdout.write(`pod ${key} started (revision ${r.revision})\n`);
    });
}

const formatLabels = (l: Record<string, string>) =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',') || '(none)';

/** Runs argv in a netns with stdio inherited; resolves with its exit code (128+n when killed by signal n). */
function execIn(netns: string, argv: string[]): Promise<number> {
  if (argv.length === 0) throw new Error('lab exec: no command given (lab exec NS/POD|CLIENT -- CMD ARGS…)');
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', nsenterArgs(netns, argv), { stdio: 'inherit' });
    // Ctrl-C reaches the child from the terminal already: outlive it and report its code.
    const ignore = () => undefined;
    const forward = () => child.kill('SIGTERM');
    process.on('SIGINT', ignore).on('SIGTERM', forward);
    const done = () => process.off('SIGINT', ignore).off('SIGTERM', forward);
    child.on('error', (err) => {
      done();
      reject(new Error(`lab exec: ${err.message}`));
    });
    child.on('exit', (code, sig) => {
      done();
      resolve(code ?? 128 + (sig ? constants.signals[sig] : 0));
    });
  });
}
