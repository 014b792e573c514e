/**
 * `lab down`: removes everything a lab made, from any state — fully up, half built, after
 * a crash, without a state file — and is idempotent. The state file is a hint, not a
 * requirement: whatever carries the `tp-` prefix is found by looking.
 *
 *   1. processes: the PIDs in state.json whose cmdline still matches what we started,
 *      every process inside a tp-* netns (stopped pods' and clients' included), nats-server
 *      named tp-lab-nats, and processes titled `tp-pod …` / `tp-client …` / `tp-agent …`:
 *      SIGTERM, ~2 s grace, SIGKILL;
 *   2. links: every tp-* link in the root namespace (tp-host takes its peer with it);
 *   3. network namespaces: every tp-* one (their veths go with them);
 *   4. bpffs: /sys/fs/bpf/tcplane/<node> of every node we know of, then /sys/fs/bpf/tcplane
 *      itself if that left it empty (an agent running on this host keeps it);
 *   5. /run/tcplane/lab, and /run/tcplane if empty.
 */
import { readdir, rm, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BPFFS_ROOT } from '../paths.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { ipBatch, netnsPath, run } from './exec.js';
import { argvMatches, findProcesses, pidsInNetns, procArgv, terminate } from './procs.js';
import { tryReadLabState } from './state.js';
import { NATS_SERVER_NAME, PREFIX, STATE_DIR, nodeBpffs } from './topology.js';

export interface DownReport {
  processes: number;
  netns: string[];
  links: string[];
  /** Whatever could not be removed (should be empty). */
  leftovers: string[];
}

/** Network namespaces named tp-* (what `ip netns list` shows, read from /run/netns). */
export async function labNetnsList(): Promise<string[]> {
  try {
    return (await readdir('/run/netns')).filter((n) => n.startsWith(PREFIX)).sort();
  } catch {
    return [];
  }
}

/** Links named tp-* in the root namespace. */
export async function rootLabLinks(): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  const names: string[] = [];
  for (const line of stdout.split('\n')) {
    // `7: tp-host@if6: <BROADCAST,...` — the name ends at '@' (peer) or ':'.
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m && m[1].startsWith(PREFIX)) names.push(m[1]);
  }
  return names;
}

const isLabTitle = (argv: string[]) => argv.length >= 1 && /^tp-(pod|client|agent) \S/.test(argv.join(' '));
const isLabNats = (argv: string[]) => /(^|\/)nats-server$/.test(argv[0]) && argv.includes(NATS_SERVER_NAME);

/** Tears the lab down; see the file comment. Never throws for "already gone". */
export async function labDown(): Promise<DownReport> {
  const state = await tryReadLabState();
  const netns = await labNetnsList();
  const leftovers: string[] = [];

  // 1. Processes. Never ourselves or whoever runs us.
  const victims = new Set<number>();
  for (const p of state?.processes ?? []) {
    const argv = await procArgv(p.pid);
    if (argv && argvMatches(argv, p.markers)) victims.add(p.pid);
  }
  for (const pid of (await pidsInNetns(netns.map(netnsPath))).keys()) victims.add(pid);
  for (const pid of await findProcesses((a) => isLabNats(a) || isLabTitle(a))) victims.add(pid);
  victims.delete(process.pid);
  victims.delete(process.ppid);
  const survivors = await terminate([...victims]);
  for (const pid of survivors) leftovers.push(`process ${pid}`);

  // 2. Root-namespace links (deleting one end of a veth deletes both).
  const links = await rootLabLinks();
  await ipBatch(links.map((l) => `link del ${l}`), { force: true }).catch(() => undefined);

  // 3. Namespaces. Devices in them are destroyed with them.
  await ipBatch(netns.map((n) => `netns del ${n}`), { force: true }).catch(() => undefined);

  // Namespace teardown is asynchronous in the kernel: wait (bounded) for links whose peer was inside.
  const deadline = Date.now() + 3000;
  let linksLeft = await rootLabLinks();
  while (linksLeft.length > 0 && Date.now() < deadline) {
    await ipBatch(linksLeft.map((l) => `link del ${l}`), { force: true }).catch(() => undefined);
    await sleep(50);
    linksLeft = await rootLabLinks();
  }
  leftovers.push(...linksLeft.map((l) => `link ${l}`));
  leftovers.push(...(await labNetnsList()).map((n) => `netns ${n}`));

  // 4. Pinned maps and links of every node we know of.
  const nodes = new Set(state?.nodes.map((n) => n.name) ?? []);
  for (const n of netns) if (n.startsWith('tp-node-')) nodes.add(n.slice('tp-node-'.length));
  for (const n of nodes) {
    await rm(nodeBpffs(n), { recursive: true, force: true }).catch((err: Error) => leftovers.push(`${nodeBpffs(n)} (${err.message})`));
  }

  await removeIfEmpty(BPFFS_ROOT);

  // 5. State directory (NATS data, logs, sockets).
  await rm(STATE_DIR, { recursive: true, force: true });
  await removeIfEmpty(dirname(STATE_DIR));

  return { processes: victims.size, netns, links, leftovers };
}

/** rmdir that leaves a directory someone else still uses (ENOTEMPTY) or that is gone. */
async function removeIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch(() => undefined);
}
