/**
 * The running lab's state file (`/run/tcplane/lab/state.json`): how every command finds
 * the lab, its NATS URL, its pods and the processes it started. Written atomically
 * (temp file + rename) after each step of `lab up`, so `lab down` knows what a crashed
 * `lab up` had made; `lab down` does not depend on it (it also scans for `tp-*`).
 *
 * Other commands use `labNatsUrl()` to reach the lab's store. Commands that change the
 * lab after it is up (`lab pod stop|start`) go through `updateLabState`, which holds a
 * lock file, so two of them at once do not lose each other's change.
 */
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { STATE_DIR, STATE_FILE } from './topology.js';

const port = z.object({ name: z.string().optional(), port: z.number().int(), protocol: z.enum(['TCP', 'UDP']) });

/** A process the lab started; `markers` are substrings its /proc cmdline must hold to be ours. */
const processEntry = z.object({
  pid: z.number().int().positive(),
  role: z.enum(['nats', 'pod', 'client', 'agent']),
  name: z.string(),
  markers: z.array(z.string()).min(1),
});
export type LabProcess = z.infer<typeof processEntry>;

export const labStateSchema = z.object({
  v: z.literal(1),
  /** `building` while `lab up` runs (or after it crashed), `up` once it returned. */
  phase: z.enum(['building', 'up']),
  specFile: z.string(),
  createdAt: z.string(),
  natsUrl: z.string(),
  agents: z.boolean(),
  /** [4], or [4, 6] in a dual-stack lab (a state file from before dual-stack has none: [4]). */
  families: z.array(z.union([z.literal(4), z.literal(6)])).default([4]),
  nodes: z.array(
    z
      .object({
        name: z.string(),
        netns: z.string(),
        underlayIP: z.string(),
        /** Every family's, IPv4 first. */
        underlayIPs: z.array(z.string()).optional(),
        podCIDR: z.string(),
        podCIDRs: z.array(z.string()).optional(),
        uplinkPeer: z.string(),
        /** As the spec gave them: the agent registers with them; `lab label node` changes the store. */
        labels: z.record(z.string(), z.string()).default({}),
      })
      .transform((n) => ({ ...n, underlayIPs: n.underlayIPs ?? [n.underlayIP], podCIDRs: n.podCIDRs ?? [n.podCIDR] })),
  ),
  /** Labels as the spec gave them; `lab label` changes the store, which is the truth. */
  namespaces: z.array(z.object({ name: z.string(), labels: z.record(z.string(), z.string()) })),
  pods: z.array(
    z.object({
      namespace: z.string(),
      name: z.string(),
      key: z.string(),
      node: z.string(),
      ip: z.string(),
      /** Every family's, IPv4 first. */
      ips: z.array(z.string()).optional(),
      labels: z.record(z.string(), z.string()),
      ports: z.array(port),
      netns: z.string(),
      hostIf: z.string(),
      hostMac: z.string(),
      podMac: z.string(),
      socket: z.string(),
      /**
       * Set by `lab pod stop` once the pod is removed (no record, no daemon; its
       * namespace and veth stay), cleared by `lab pod start`. `lab probe` skips it.
       */
      stopped: z.boolean().optional(),
    }).transform((p) => ({ ...p, ips: p.ips ?? [p.ip] })),
  ),
  /** Hosts outside the cluster, on the underlay only (a state file from before clients has none). */
  clients: z
    .array(
      z
        .object({ name: z.string(), netns: z.string(), ip: z.string(), ips: z.array(z.string()).optional(), bridgeIf: z.string(), socket: z.string() })
        .transform((c) => ({ ...c, ips: c.ips ?? [c.ip] })),
    )
    .default([]),
  processes: z.array(processEntry),
});
export type LabState = z.infer<typeof labStateSchema>;
export type LabStatePod = LabState['pods'][number];
export type LabStateClient = LabState['clients'][number];

/** No lab is up (no state file), or its state file is unreadable. */
export class LabNotUpError extends Error {
  override name = 'LabNotUpError';
}

/**
 * The running lab's state.
 * @throws LabNotUpError when no lab is up (`run tcplane lab up -f LAB.yaml`) or the file is corrupt.
 */
export async function readLabState(): Promise<LabState> {
  let text: string;
  try {
    text = await readFile(STATE_FILE, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new LabNotUpError('no lab is up (start one with `tcplane lab up -f LAB.yaml`)');
    }
    throw new LabNotUpError(`read ${STATE_FILE}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new LabNotUpError(`${STATE_FILE} is corrupt (${(err as Error).message}); run \`tcplane lab down\``);
  }
  const r = labStateSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new LabNotUpError(`${STATE_FILE} is corrupt (${issue?.path.join('.')}: ${issue?.message}); run \`tcplane lab down\``);
  }
  return r.data;
}

/** The NATS URL of the running lab (`nats://10.250.0.1:4222`). @throws LabNotUpError */
export async function labNatsUrl(): Promise<string> {
  return (await readLabState()).natsUrl;
}

/** Reads the state file if there is a valid one, else undefined (for `lab down`). */
export async function tryReadLabState(): Promise<LabState | undefined> {
  try {
    return await readLabState();
  } catch {
    return undefined;
  }
}

/** Writes the state file atomically. */
export async function writeLabState(state: LabState): Promise<void> {
  await mkdir(STATE_DIR, { recursive: true });
  const tmp = `${STATE_FILE}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, STATE_FILE);
}

const LOCK_FILE = `${STATE_FILE}.lock`;
const LOCK_WAIT_MS = 10_000;

/**
 * Read, change and write the state file under an exclusive lock (a lock file created
 * with O_EXCL holding the owner's PID; a lock whose owner is gone is taken over).
 * `change` may throw to write nothing.
 * @throws LabNotUpError when no lab is up; Error when the lock stays held for 10 s.
 */
export async function updateLabState<T>(change: (state: LabState) => Promise<T> | T): Promise<T> {
  await readLabState(); // no lab: say so, and create no lock file
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fh = await open(LOCK_FILE, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await readFile(LOCK_FILE, 'utf8').catch(() => ''));
      if (owner > 0 && !pidExists(owner)) {
        await unlink(LOCK_FILE).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${LOCK_FILE} is held by process ${owner || '?'} for over ${LOCK_WAIT_MS} ms`);
      await sleep(20);
    }
  }
  try {
    const state = await readLabState();
    const out = await change(state);
    await writeLabState(state);
    return out;
  } finally {
    await unlink(LOCK_FILE).catch(() => undefined);
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
