/**
 * A lab pod's lifecycle at run time, as a cluster changes it:
 *
 *   lab pod ready NS/POD true|false   rewrites `ready` in the pod's tcplane-pods record
 *                                     (a readiness probe flipping)
 *   lab pod stop NS/POD [--grace-seconds N]
 *                                     the pod turns terminating: its record gets
 *                                     `ready: false, terminating: true` while its servers
 *                                     still answer; after N seconds (default 0) it is
 *                                     removed: record deleted, daemon stopped. Its network
 *                                     namespace and veth stay, so `start` can bring it back.
 *   lab pod start NS/POD              a stopped pod comes back as LAB.yaml declares it:
 *                                     daemon restarted with the same servers, then its
 *                                     record put back (ready, not terminating, labels as declared)
 *
 * The state file marks a removed pod `stopped`; `lab probe` skips it, `lab down` removes
 * it like any other. A second `stop` of a stopped pod, `start` of a pod that is not
 * stopped, or `ready` of a terminating or stopped pod is an error (LabPodError) that
 * says what the pod is doing: scripts learn of a mistaken sequence instead of having it
 * hidden. `stop` of a terminating pod (an earlier stop was killed) starts its own grace
 * period and removes it.
 */
import { podKey, podRecord, type PodRecord } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { startDaemon, stopDaemon } from './daemons.js';
import { readLabState, updateLabState, type LabState, type LabStatePod } from './state.js';

export class LabPodError extends Error {
  override name = 'LabPodError';
}

/** The record of a pod as LAB.yaml declares it: ready, not terminating, the declared labels. */
export function declaredPodRecord(p: Pick<LabStatePod, 'namespace' | 'name' | 'node' | 'labels' | 'ips' | 'hostIf' | 'ports'>): PodRecord {
  return podRecord.parse({
    v: 1,
    namespace: p.namespace,
    name: p.name,
    node: p.node,
    labels: p.labels,
    ips: p.ips,
    ifname: p.hostIf,
    ports: p.ports,
    ready: true,
  });
}

/** The pod `key` of the lab. @throws LabPodError naming the lab's pods when there is none. */
export function findPod(state: LabState, key: string, op: string): LabStatePod {
  const p = state.pods.find((x) => x.key === key);
  if (!p) throw new LabPodError(`${op}: no pod ${key} in the lab (pods: ${state.pods.map((x) => x.key).join(', ') || 'none'})`);
  return p;
}

/**
 * `lab pod ready`: sets `ready` in the pod's record.
 * @throws LabPodError when the pod is stopped or terminating.
 */
export async function setPodReady(store: Store, key: string, ready: boolean): Promise<{ revision: number }> {
  const op = 'lab pod ready';
  const pod = findPod(await readLabState(), key, op);
  if (pod.stopped) throw new LabPodError(`${op}: pod ${key} is stopped (start it with \`tcplane lab pod start ${key}\`)`);
  const cur = await store.get('pods', key, podRecord);
  if (!cur) throw new LabPodError(`${op}: pod ${key} has no record in the store (is it being stopped?)`);
  if (cur.value.terminating) throw new LabPodError(`${op}: pod ${key} is terminating: it stays not ready until it is removed`);
  return { revision: await store.put('pods', key, podRecord.parse({ ...cur.value, ready })) };
}

export interface StopOptions {
  /** How long the pod stays terminating before it is removed. */
  graceMs: number;
  /** Aborting ends the grace period early: the pod is removed at once. */
  signal?: AbortSignal;
  /** Progress lines. */
  log?: (msg: string) => void;
}

/**
 * `lab pod stop`: terminating for `graceMs`, then removed (see the file comment).
 * Resolves once the pod is removed; `early` when the signal cut the grace period short.
 * @throws LabPodError when the pod is unknown or already stopped.
 */
export async function stopPod(store: Store, key: string, opts: StopOptions): Promise<{ early: boolean }> {
  const op = 'lab pod stop';
  const pod = findPod(await readLabState(), key, op);
  if (pod.stopped) throw new LabPodError(`${op}: pod ${key} is already stopped (start it with \`tcplane lab pod start ${key}\`)`);
  const cur = await store.get('pods', key, podRecord);
  await store.put('pods', key, podRecord.parse({ ...(cur?.value ?? declaredPodRecord(pod)), ready: false, terminating: true }));
  opts.log?.(`${op}: ${key} is terminating (not ready, its servers still answer); removing it in ${opts.graceMs / 1000} s`);
  const early = await graceWait(opts.graceMs, opts.signal);
  if (early) opts.log?.(`${op}: interrupted: removing ${key} now`);
  await removePod(store, key);
  return { early };
}

/** Resolves after `ms`, or at once when `signal` aborts (true then). */
function graceWait(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (early: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(early);
    };
    const onAbort = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    signal?.addEventListener('abort', onAbort);
  });
}

/**
 * Record first (nothing new is sent to a pod that is going), then the daemon, then the
 * state file. A crash between the steps leaves a pod that `lab pod stop` finishes and
 * `lab down` removes.
 */
async function removePod(store: Store, key: string): Promise<void> {
  await store.delete('pods', key);
  await updateLabState(async (state) => {
    const pod = findPod(state, key, 'lab pod stop');
    const procs = state.processes.filter((p) => p.role === 'pod' && p.name === key);
    for (const p of procs) {
      if (!(await stopDaemon(p))) throw new LabPodError(`lab pod stop: pod ${key}: its daemon (PID ${p.pid}) does not stop`);
    }
    state.processes = state.processes.filter((p) => !procs.includes(p));
    pod.stopped = true;
  });
}

/**
 * `lab pod start`: restarts a stopped pod's daemon and, once it answers, puts its record
 * back as declared.
 * @throws LabPodError when the pod is unknown or not stopped; Error when its daemon does not start.
 */
export async function startPod(store: Store, key: string): Promise<{ revision: number }> {
  const op = 'lab pod start';
  const pod = findPod(await readLabState(), key, op);
  if (!pod.stopped) {
    const cur = await store.get('pods', key, podRecord);
    const doing = cur?.value.terminating ? 'terminating (a `lab pod stop` is waiting out its grace period)' : 'running';
    throw new LabPodError(`${op}: pod ${key} is ${doing}, not stopped`);
  }
  // A daemon an interrupted earlier start left behind would hold the ports: stop it first.
  await updateLabState(async (s) => {
    const stale = s.processes.filter((p) => p.role === 'pod' && p.name === key);
    for (const p of stale) {
      if (!(await stopDaemon(p))) throw new LabPodError(`${op}: pod ${key}: an earlier daemon (PID ${p.pid}) does not stop`);
    }
    s.processes = s.processes.filter((p) => !stale.includes(p));
  });
  const daemon = { kind: 'pod' as const, name: key, netns: pod.netns, ips: pod.ips, ports: pod.ports, socket: pod.socket };
  let started: LabState['processes'][number] | undefined;
  try {
    await startDaemon(daemon, (entry) => {
      started = entry;
      return updateLabState((s) => void s.processes.push(entry));
    });
  } catch (err) {
    // Leave it stopped, as it was: no daemon, no process entry.
    if (started) {
      const p = started;
      await stopDaemon(p);
      await updateLabState((s) => void (s.processes = s.processes.filter((x) => x.pid !== p.pid)));
    }
    throw err;
  }
  const revision = await store.put('pods', podKey(pod.namespace, pod.name), declaredPodRecord(pod));
  await updateLabState((s) => void delete findPod(s, key, op).stopped);
  return { revision };
}
