/**
 * The running lab's state file (`/run/tcplane/lab/state.json`): how every command finds
 * the lab, its NATS URL, its pods and the processes it started. Written atomically
 * (temp file + rename) after each step of `lab up`, so `lab down` knows what a crashed
 * `lab up` had made; `lab down` does not depend on it (it also scans for `tp-*`).
 *
 * Other commands use `labNatsUrl()` to reach the lab's store.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
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
  nodes: z.array(
    z.object({ name: z.string(), netns: z.string(), underlayIP: z.string(), podCIDR: z.string(), uplinkPeer: z.string() }),
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
      labels: z.record(z.string(), z.string()),
      ports: z.array(port),
      netns: z.string(),
      hostIf: z.string(),
      hostMac: z.string(),
      podMac: z.string(),
      socket: z.string(),
    }),
  ),
  /** Hosts outside the cluster, on the underlay only (a state file from before clients has none). */
  clients: z
    .array(z.object({ name: z.string(), netns: z.string(), ip: z.string(), bridgeIf: z.string(), socket: z.string() }))
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

