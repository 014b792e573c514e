/**
 * `tcplane cluster init [--service-cidr CIDR[,CIDR6]] [--node-port-range MIN-MAX] [--maglev-table-size N]`
 * and `tcplane cluster show`: the cluster-wide settings (src/services/cluster-config.ts).
 * `init` creates them once; run it before the first service is applied to choose the
 * service range (otherwise the first `apply` of a service creates Kubernetes' defaults).
 * They never change afterwards: allocations and Maglev tables depend on them.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { ensureClusterConfig, readClusterConfig, type ClusterSettings } from '../services/cluster-config.js';
import { withStore } from './store.js';

function range(v: string): { min: number; max: number } {
  const m = /^(\d+)-(\d+)$/.exec(v);
  if (!m) throw new InvalidArgumentError('expected MIN-MAX, e.g. 30000-32767');
  return { min: Number(m[1]), max: Number(m[2]) };
}

export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('the cluster-wide settings every node shares');
  cluster
    .command('init')
    .description('create the cluster settings (once; before the first service is applied)')
    .option('--service-cidr <cidrs>', 'where ClusterIPs are allocated from: an IPv4 range, and an IPv6 one after a comma for dual-stack services (default 10.96.0.0/12)')
    .option('--node-port-range <min-max>', 'where node ports are allocated from (default 30000-32767)', range)
    .option('--maglev-table-size <n>', 'the largest Maglev table, a prime of the size ladder (default 16381)', (v) => Number(v))
    .option('--nats <url>', 'NATS server (default: $TCPLANE_NATS, or the running lab)')
    .action(async (o: { serviceCidr?: string; nodePortRange?: { min: number; max: number }; maglevTableSize?: number; nats?: string }) => {
      const settings: ClusterSettings = { serviceCIDRs: o.serviceCidr?.split(',').map((c) => c.trim()), nodePortRange: o.nodePortRange, maglevMaxTableSize: o.maglevTableSize };
      await withStore(o.nats, async (store) => {
        const { config, created } = await ensureClusterConfig(store, settings);
        const asked = Object.entries(settings).filter(([, v]) => v !== undefined);
        const differs = asked.some(([k, v]) => JSON.stringify(config[k as keyof typeof config]) !== JSON.stringify(v));
        console.log(JSON.stringify({ ...config, maglevSeed: undefined }, null, 2));
        if (!created && differs) throw new Error('cluster init: the cluster settings exist already and differ from these; they cannot change');
        console.log(created ? 'cluster settings created' : 'cluster settings unchanged (they existed)');
      });
    });
  cluster
    .command('show')
    .description('print the cluster settings')
    .option('--nats <url>', 'NATS server (default: $TCPLANE_NATS, or the running lab)')
    .action(async (o: { nats?: string }) => {
      await withStore(o.nats, async (store) => {
        const config = await readClusterConfig(store);
        if (!config) throw new Error('cluster show: no cluster settings yet (`tcplane cluster init`, or apply a service)');
        console.log(JSON.stringify(config, null, 2));
      });
    });
}
