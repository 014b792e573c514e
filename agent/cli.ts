/** `tcplane agent`: the node daemon, run as root once per node. */
import type { Command } from 'commander';
import { pino } from 'pino';
import { Agent } from './agent.js';
import { agentOptions } from './options.js';

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the node agent: watch the store, program this node\'s BPF maps and tc hooks')
    .requiredOption('--node <name>', 'this node\'s name (maps are pinned under <bpffs-root>/<name>)')
    .requiredOption('--nats <url>', 'NATS server with JetStream, e.g. nats://10.250.0.1:4222')
    .option('--pod-cidr <cidrs>', 'this node\'s pod ranges, one per family, comma-separated (recorded for other nodes)')
    .option('--bpffs-root <dir>', 'where to pin maps and links')
    .option('--attach <mode>', 'tc attach mechanism: auto (tcx if the kernel has it), tcx or clsact')
    .option('--uplink <ifname>', 'the node\'s uplink interface, where NodePort and external traffic arrives (none: pods only)')
    .option('--node-labels <labels>', 'KEY=VALUE,… the node registers with the first time (kept in the store after that)')
    .option('--ct-max-entries <n>', 'conntrack table size (set when the maps are first created)', (v) => Number(v))
    .option('--lb-max-backends <n>', 'backends map size: service ports × their backends (default 65536; set when the maps are first created)', (v) => Number(v))
    .option('--map-entries <name=n,…>', 'sizes of other maps (tp_ipcache_v1, tp_endpoints_v1, …; set when the maps are first created)')
    .option('--policy-map-entries <n>', 'policy entries this node may hold (default 65536; endpoints that do not fit fail closed)', (v) => Number(v))
    .option('--policy-entries-per-endpoint <n>', 'policy entries one endpoint may need before it fails closed (default: no limit of its own)', (v) => Number(v))
    .option('--host-routing <bpf|stack>', 'pod packets for other nodes\' pods: sent out of the uplink from tc (bpf, default) or through the node\'s forwarding and netfilter (stack)')
    .option('--events <on|off>', 'verdict events for observe (default on)')
    .option('--event-sample <n>', 'report 1 in N allowed new connections to observe (0: none; every drop is reported)', (v) => Number(v))
    .option('--event-rate <n>', 'verdict events per endpoint per second at most (0: no limit; the rest are counted)', (v) => Number(v))
    .option('--event-ring-bytes <n>', 'ring buffer for verdict events, a power of 2 (default 1 MiB; set when the maps are first created)', (v) => Number(v))
    .option('--flow-history <n>', 'verdict events kept for observe --last and --since (default 8192)', (v) => Number(v))
    .option('--metrics-address <host:port>', 'serve Prometheus /metrics here, or none', '127.0.0.1:9962')
    .option('--log-level <level>', 'error, warn, info or debug')
    .action(async (o) => {
      const parsed = agentOptions.safeParse({
        node: o.node,
        nats: o.nats,
        podCIDRs: typeof o.podCidr === 'string' ? o.podCidr.split(',').map((c: string) => c.trim()) : undefined,
        bpffsRoot: o.bpffsRoot,
        attachMode: o.attach,
        uplink: o.uplink,
        nodeLabels: o.nodeLabels,
        ctMaxEntries: o.ctMaxEntries,
        lbMaxBackends: o.lbMaxBackends,
        mapEntries: o.mapEntries,
        policyMapEntries: o.policyMapEntries,
        policyEntriesPerEndpoint: o.policyEntriesPerEndpoint,
        hostRouting: o.hostRouting,
        events: o.events,
        eventSample: o.eventSample,
        eventRate: o.eventRate,
        eventRingBytes: o.eventRingBytes,
        flowHistory: o.flowHistory,
        metricsAddress: o.metricsAddress,
        logLevel: o.logLevel,
      });
      if (!parsed.success) {
        const i = parsed.error.issues[0]!;
        const flag = String(i.path[0]).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`); // the option as typed
        throw new Error(`agent: --${flag}: ${i.message}`);
      }
      const opts = parsed.data;
      if (process.env.TCPLANE_PROCESS_TITLE) process.title = process.env.TCPLANE_PROCESS_TITLE;
      const log = pino({ level: opts.logLevel, base: { node: opts.node } });
      const agent = new Agent(opts, log);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'stopping; maps and programs stay in place');
        void agent.stop().then(
          () => process.exit(0),
          (err) => {
            log.error({ err }, 'stop failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      try {
        await agent.start();
      } catch (err) {
        await agent.stop().catch(() => undefined);
        throw err;
      }
      log.info('agent running');
      await new Promise(() => undefined); // until a signal
    });
}
