/**
 * `lab up`: builds the topology of topology.ts from a LabPlan, starts NATS, one daemon
 * per pod and per client and (unless disabled) one agent per node, writes the namespaces
 * and pods into the store and waits for the agents to enforce them.
 *
 * Order matters:
 *   1. every netns, and its sysctls (IPv6 off, or on without DAD in a dual-stack lab;
 *      forwarding, rp_filter 0) before any
 *      interface exists, so interfaces inherit the `default` values;
 *   2. root end of the underlay (tp-host), then NATS on it (in the background);
 *   3. the underlay bridge with every node's uplink and every client's veth;
 *   4. per node: uplink address, routes to the other nodes' pod CIDRs, pod veths;
 *   5. per pod: address, gateway route, permanent gateway neighbour; per client: address
 *      (the underlay /24 on-link), the external range via the first node; then the daemons;
 *   6. store records (namespaces before pods), agents, the wait.
 * Configuration goes through one `ip -batch -` per namespace, those of a step in parallel.
 *
 * A second `lab up` is refused while anything of a lab exists (the state directory is
 * created with a non-recursive mkdir, which doubles as a lock). A failure after that
 * point tears down everything made so far (labDown) and rethrows.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { CLI_ENTRY } from '../paths.js';
import { ensureClusterConfig } from '../services/cluster-config.js';
import { storedServices } from '../services/stored.js';
import { refreshExternalRoutes } from './external-routes.js';
import { namespaceRecord, podKey } from '../store/schema.js';
import { Store } from '../store/store.js';
import { agentExitWatch, agentMarkers, startAgent, waitForAgents } from './agents.js';
import { startDaemon } from './daemons.js';
import { labDown, labNetnsList, rootLabLinks } from './down.js';
import { CommandError, ipBatch, run, settleAll, sysctlIn } from './exec.js';
import { NATS_MARKERS, startNats } from './nats-server.js';
import { declaredPodRecord } from './pods.js';
import type { LabPlan } from './spec.js';
import { writeLabState, type LabProcess, type LabState } from './state.js';
import {
  BRIDGE,
  CLIENT_IF,
  CLIENT_SOCKET_DIR,
  EXTERNAL_RANGE,
  EXTERNAL_RANGE6,
  HOST_IF,
  HOST_IP,
  HOST_PEER,
  LOG_DIR,
  NATS_DIR,
  NATS_URL,
  POD_GATEWAY,
  POD_GATEWAY6,
  POD_IF,
  POD_SOCKET_DIR,
  SERVICE_CIDR6,
  STATE_DIR,
  UNDERLAY_NETNS,
  UNDERLAY_PREFIX,
  UNDERLAY6_PREFIX,
  UPLINK_IF,
} from './topology.js';

export class LabAlreadyUpError extends Error {
  override name = 'LabAlreadyUpError';
}

export interface UpOptions {
  /** Start one agent per node (false: plain routing, the benchmark baseline). */
  agents: boolean;
  /** Bound on the wait for agents to enforce the pods. */
  agentTimeoutMs: number;
  /** Progress lines (to stderr in the CLI). */
  log?: (msg: string) => void;
}

/** Milliseconds spent per phase, for the summary line and benchmarks. */
export type UpTimings = Record<string, number>;

/**
 * Builds the lab. Refuses (LabAlreadyUpError) while a lab or its leftovers exist; tears
 * down and rethrows on any later failure. SIGINT/SIGTERM during the build also tear down.
 */
export async function labUp(plan: LabPlan, opts: UpOptions): Promise<{ state: LabState; timings: UpTimings }> {
  await refuseIfUp();
  await mkdir('/run/tcplane', { recursive: true });
  try {
    await mkdir(STATE_DIR); // not recursive: the lock against a concurrent `lab up`
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyUp();
    throw err;
  }
  // A signal stops the build at the next step (or at once during the agent wait).
  let interrupted: NodeJS.Signals | undefined;
  let rejectInterrupt!: (err: Error) => void;
  const interrupt = new Promise<never>((_, reject) => (rejectInterrupt = reject));
  interrupt.catch(() => undefined);
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = sig;
    opts.log?.(`lab up: ${sig}, tearing down`);
    rejectInterrupt(new Error(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  const background: Promise<unknown>[] = [];
  const checkpoint = () => {
    if (interrupted) throw new Error(`interrupted by ${interrupted}`);
  };
  try {
    return await build(plan, opts, { background, checkpoint, interrupt });
  } catch (err) {
    opts.log?.(`lab up: failed, tearing down: ${(err as Error).message.split('\n')[0]}`);
    await Promise.allSettled(background); // e.g. NATS still starting: let it finish, then remove it
    const down = await labDown().catch((e: Error) => ({ leftovers: [`(lab down failed: ${e.message})`] }));
    if (down.leftovers.length > 0) opts.log?.(`lab up: could not remove: ${down.leftovers.join(', ')}; run \`tcplane lab down\``);
    throw err;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

async function refuseIfUp(): Promise<void> {
  const netns = await labNetnsList();
  const links = await rootLabLinks();
  if (netns.length > 0 || links.length > 0) throw alreadyUp(netns.length + links.length);
}

function alreadyUp(n?: number): LabAlreadyUpError {
  const what = n ? ` (${n} tp-* namespaces/links exist)` : '';
  return new LabAlreadyUpError(`lab up: a lab is already up${what}; run \`tcplane lab down\` first`);
}

interface BuildControl {
  /** Work started in the background, settled before any teardown. */
  background: Promise<unknown>[];
  /** Throws once a signal arrived. */
  checkpoint: () => void;
  /** Rejects when a signal arrives. */
  interrupt: Promise<never>;
}

async function build(plan: LabPlan, opts: UpOptions, ctl: BuildControl): Promise<{ state: LabState; timings: UpTimings }> {
  const { background, checkpoint } = ctl;
  const t0 = Date.now();
  const timings: UpTimings = {};
  let mark = t0;
  const phase = (name: string) => {
    const now = Date.now();
    timings[name] = now - mark;
    mark = now;
    checkpoint();
  };
  await settleAll([LOG_DIR, POD_SOCKET_DIR, CLIENT_SOCKET_DIR, NATS_DIR].map((d) => mkdir(d, { recursive: true })));

  const state: LabState = {
    v: 1,
    phase: 'building',
    specFile: plan.file,
    createdAt: new Date().toISOString(),
    natsUrl: NATS_URL,
    agents: opts.agents,
    families: plan.families,
    nodes: plan.nodes.map(({ name, netns, underlayIP, underlayIPs, podCIDR, podCIDRs, uplinkPeer, labels }) => ({
      name,
      netns,
      underlayIP,
      underlayIPs,
      podCIDR,
      podCIDRs,
      uplinkPeer,
      labels,
    })),
    namespaces: plan.namespaces,
    pods: plan.pods,
    clients: plan.clients,
    processes: [],
  };
  // Writes are chained: parallel steps record their processes without racing on the file.
  let saving = Promise.resolve();
  const save = () => (saving = saving.then(() => writeLabState(state)));
  await save();
  const addProcess = async (p: LabProcess) => {
    state.processes.push(p);
    await save();
  };

  // 1. Namespaces and their sysctls.
  const allNetns = [UNDERLAY_NETNS, ...plan.nodes.map((n) => n.netns), ...plan.pods.map((p) => p.netns), ...plan.clients.map((c) => c.netns)];
  await ipBatch(allNetns.map((n) => `netns add ${n}`));
  // IPv6 is off in a single-stack lab; in a dual-stack one it is on, without duplicate
  // address detection (every address is the lab's own) and without router advertisements.
  const dual = plan.families.includes(6);
  const ipv6: Record<string, number> = dual
    ? {
        'net.ipv6.conf.all.disable_ipv6': 0,
        'net.ipv6.conf.default.disable_ipv6': 0,
        'net.ipv6.conf.all.accept_dad': 0,
        'net.ipv6.conf.default.accept_dad': 0,
        'net.ipv6.conf.all.accept_ra': 0,
        'net.ipv6.conf.default.accept_ra': 0,
      }
    : { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 };
  // The bridge only switches: no IPv6 of its own in either case.
  const noIPv6: Record<string, number> = { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 };
  await settleAll([
    // -e: br_netfilter's keys exist only when the module is loaded.
    sysctlIn(UNDERLAY_NETNS, {
      ...noIPv6,
      'net.bridge.bridge-nf-call-iptables': 0,
      'net.bridge.bridge-nf-call-ip6tables': 0,
      'net.bridge.bridge-nf-call-arptables': 0,
    }, true),
    // rp_filter: the uplink is created after this and inherits `default` (0).
    ...plan.nodes.map((n) =>
      sysctlIn(n.netns, {
        ...ipv6,
        'net.ipv4.ip_forward': 1,
        'net.ipv4.conf.all.rp_filter': 0,
        'net.ipv4.conf.default.rp_filter': 0,
        ...(dual ? { 'net.ipv6.conf.all.forwarding': 1 } : {}),
      }),
    ),
    ...plan.pods.map((p) => sysctlIn(p.netns, ipv6)),
    ...plan.clients.map((c) => sysctlIn(c.netns, ipv6)),
  ]);
  phase('netns');

  // 2. Root end of the underlay, then NATS on it, in the background.
  await ipBatch([
    `link add ${HOST_IF} type veth peer name ${HOST_PEER} netns ${UNDERLAY_NETNS}`,
    `link set ${HOST_IF} addrgenmode none`, // no IPv6 link-local on the lab's link
    `addr add ${HOST_IP}/${UNDERLAY_PREFIX} dev ${HOST_IF}`,
    `link set ${HOST_IF} up`,
  ]);
  const nats = startNats().then(async ({ pid }) => {
    await addProcess({ pid, role: 'nats', name: 'nats', markers: NATS_MARKERS });
    return pid;
  });
  nats.catch(() => undefined); // awaited below; do not let an early failure go unhandled
  background.push(nats);

  // 3. Underlay bridge, node uplinks, client veths.
  await ipBatch(
    [
      'link set lo up',
      // No multicast snooping: neighbour solicitations reach every port without an MLD querier.
      `link add ${BRIDGE} type bridge nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0 mcast_snooping 0`,
      `link set ${BRIDGE} up`,
      `link set ${HOST_PEER} master ${BRIDGE}`,
      `link set ${HOST_PEER} up`,
      ...plan.nodes.flatMap((n) => [
        `link add ${n.uplinkPeer} type veth peer name ${UPLINK_IF} netns ${n.netns}`,
        `link set ${n.uplinkPeer} master ${BRIDGE}`,
        `link set ${n.uplinkPeer} up`,
      ]),
      ...plan.clients.flatMap((c) => [
        `link add ${c.bridgeIf} type veth peer name ${CLIENT_IF} netns ${c.netns}`,
        `link set ${c.bridgeIf} master ${BRIDGE}`,
        `link set ${c.bridgeIf} up`,
      ]),
    ],
    { netns: UNDERLAY_NETNS },
  );
  phase('underlay');

  // 4. Nodes: uplink, native routes to the other nodes' pods, pod veths (host side).
  await settleAll(
    plan.nodes.map((n) =>
      ipBatch(
        [
          'link set lo up',
          ...n.underlayIPs.map((ip, f) => `addr add ${ip}/${f === 0 ? UNDERLAY_PREFIX : UNDERLAY6_PREFIX} dev ${UPLINK_IF}`),
          `link set ${UPLINK_IF} up`,
          ...plan.nodes
            .filter((o) => o !== n)
            .flatMap((o) => o.podCIDRs.map((cidr, f) => `route add ${cidr} via ${o.underlayIPs[f]} dev ${UPLINK_IF}`)),
          ...plan.pods
            .filter((p) => p.node === n.name)
            .flatMap((p) => [
              `link add ${p.hostIf} address ${p.hostMac} type veth peer name ${POD_IF} address ${p.podMac} netns ${p.netns}`,
              `link set ${p.hostIf} up`,
              ...p.ips.map((ip, f) => `route add ${ip}/${f === 0 ? 32 : 128} dev ${p.hostIf}${f === 0 ? ' scope link' : ''}`),
            ]),
        ],
        { netns: n.netns },
      ),
    ),
  );
  phase('nodes');

  // 5. Pods: /32, link-scope route to the fake gateway, default route, permanent neighbour.
  await settleAll(
    plan.pods.map((p) =>
      ipBatch(
        [
          'link set lo up',
          `addr add ${p.ip}/32 dev ${POD_IF}`,
          `link set ${POD_IF} up`,
          `route add ${POD_GATEWAY} dev ${POD_IF} scope link`,
          `route add default via ${POD_GATEWAY} dev ${POD_IF}`,
          `neigh replace ${POD_GATEWAY} lladdr ${p.hostMac} dev ${POD_IF} nud permanent`,
          // IPv6: the /128, and fe80::1 (on-link in fe80::/64) as the gateway, answered the same way.
          ...p.ips.slice(1).flatMap((ip) => [
            `addr add ${ip}/128 dev ${POD_IF} nodad`,
            `route add default via ${POD_GATEWAY6} dev ${POD_IF}`,
            `neigh replace ${POD_GATEWAY6} lladdr ${p.hostMac} dev ${POD_IF} nud permanent`,
          ]),
        ],
        { netns: p.netns },
      ),
    ),
  );
  // Clients: the underlay /24 on-link (its prefix route), the external range via the first
  // node; no route to pods and no default route (traffic never leaves the machine).
  const firstNode = plan.nodes[0];
  await settleAll(
    plan.clients.map((c) =>
      ipBatch(
        [
          'link set lo up',
          `addr add ${c.ip}/${UNDERLAY_PREFIX} dev ${CLIENT_IF}`,
          ...c.ips.slice(1).map((ip) => `addr add ${ip}/${UNDERLAY6_PREFIX} dev ${CLIENT_IF} nodad`),
          `link set ${CLIENT_IF} up`,
          `route add ${EXTERNAL_RANGE} via ${firstNode.underlayIP} dev ${CLIENT_IF}`,
          ...(dual ? [`route add ${EXTERNAL_RANGE6} via ${firstNode.underlayIPs[1]} dev ${CLIENT_IF}`] : []),
        ],
        { netns: c.netns },
      ),
    ),
  );
  phase('pods');

  await settleAll([
    ...plan.pods.map((p) => startDaemon({ kind: 'pod', name: p.key, netns: p.netns, ips: p.ips, ports: p.ports, socket: p.socket }, addProcess)),
    ...plan.clients.map((c) => startDaemon({ kind: 'client', name: c.name, netns: c.netns, ips: c.ips, ports: [], socket: c.socket }, addProcess)),
  ]);
  phase('daemons');

  // 6. Store: namespaces before pods, so an agent never sees a pod of an unknown namespace.
  await nats;
  const store = await Store.connect(NATS_URL, { name: 'tcplane-lab', timeoutMs: 5000 });
  try {
    for (const ns of plan.namespaces) {
      await store.put('namespaces', ns.name, namespaceRecord.parse({ v: 1, name: ns.name, labels: ns.labels }));
    }
    for (const p of plan.pods) await store.put('pods', podKey(p.namespace, p.name), declaredPodRecord(p));
    const podsRevision = await store.lastRevision('pods');
    // The lab's service range for ClusterIPs (LAB.yaml's serviceCIDR or SERVICE_CIDR) (a cluster setting, created before anyone allocates).
    // A dual-stack lab gives services an IPv6 range too (SERVICE_CIDR6).
    await ensureClusterConfig(store, { serviceCIDRs: plan.families.includes(6) ? [plan.serviceCIDR, SERVICE_CIDR6] : [plan.serviceCIDR] });
    phase('store');

    if (opts.agents) {
      const started = await settleAll(
        plan.nodes.map(async (n) => {
          const a = await startAgent(n);
          await addProcess({ pid: a.pid, role: 'agent', name: n.name, markers: agentMarkers(n.name) });
          return { node: n.name, exited: a.exited };
        }),
      );
      opts.log?.(`lab up: waiting for ${started.length} agents (up to ${opts.agentTimeoutMs} ms)`);
      const expect = plan.nodes.map((n) => ({ node: n.name, pods: plan.pods.filter((p) => p.node === n.name).length }));
      await waitForAgents(store, expect, podsRevision, opts.agentTimeoutMs, Promise.race([agentExitWatch(started), ctl.interrupt]));
      phase('agents');
    }
    if (plan.services.length > 0) {
      await applyServices(plan, opts.agents);
      if (opts.agents) await refreshExternalRoutes(state, (await storedServices(store)).services);
      phase('services');
    }
  } finally {
    await store.close();
  }

  state.phase = 'up';
  await save();
  timings.total = Date.now() - t0;
  return { state, timings };
}

/**
 * Applies the spec's services as a user would: `tcplane apply -f` of their documents
 * (waiting for every agent to program them when agents run).
 */
async function applyServices(plan: LabPlan, agents: boolean): Promise<void> {
  const file = `${STATE_DIR}/services.yaml`;
  await writeFile(file, plan.services.map((s) => stringify(s.document)).join('---\n'));
  const args = [CLI_ENTRY, 'apply', '-f', file, '--nats', NATS_URL, ...(agents ? ['--wait', '--timeout', '30s'] : [])];
  try {
    await run(process.execPath, args, { timeoutMs: 60_000 });
  } catch (err) {
    const detail = err instanceof CommandError ? err.stderr.trim() : (err as Error).message;
    throw new Error(`lab up: applying the services of ${plan.file}: ${detail}`, { cause: err });
  }
}
