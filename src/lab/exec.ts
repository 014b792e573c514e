/**
 * Running the tools the lab drives (ip, sysctl, nsenter): argument vectors only, never a
 * shell string; every call bounded in time.
 *
 * Processes enter a namespace through `nsenter --net=/run/netns/NAME`, not `ip netns
 * exec`: the latter remounts /sys, which hides the bpffs at /sys/fs/bpf where agents pin.
 */
import { spawn } from 'node:child_process';

export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly argv: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(' ')}: ${stderr.trim() || (code === null ? 'timed out' : `exit code ${code}`)}`);
  }
}

export interface RunOptions {
  /** Written to the command's stdin. */
  input?: string;
  /** Killed (SIGKILL) and failed after this long; default 10 s. */
  timeoutMs?: number;
}

/** Runs a command to completion; resolves with its output, rejects with CommandError on non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const argv = [cmd, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 10_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new CommandError(argv, null, err.message));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) reject(new CommandError(argv, null, `timed out after ${opts.timeoutMs ?? 10_000} ms`));
      else if (code === 0) resolve({ stdout, stderr });
      else reject(new CommandError(argv, code, stderr));
    });
    child.stdin.on('error', () => undefined); // the command may exit without reading
    child.stdin.end(opts.input ?? '');
  });
}

/** The path `ip netns add NAME` mounts the namespace at. */
export const netnsPath = (netns: string) => `/run/netns/${netns}`;

/** `nsenter` arguments that run `argv` in a named network namespace. */
export const nsenterArgs = (netns: string, argv: readonly string[]) => [`--net=${netnsPath(netns)}`, '--', ...argv];

/**
 * Runs `ip` commands through one `ip -batch -` (one process for many changes), in
 * `netns` when given. Without `force` it stops at the first failing line.
 */
export async function ipBatch(lines: readonly string[], opts: { netns?: string; force?: boolean } = {}): Promise<void> {
  if (lines.length === 0) return;
  const args = [...(opts.netns ? ['-n', opts.netns] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'];
  await run('ip', args, { input: `${lines.join('\n')}\n` });
}

/**
 * Sets sysctls inside a network namespace (`/proc/sys/net` is per namespace).
 * @param ignoreUnknown skip keys this kernel does not have (`sysctl -e`).
 */
export async function sysctlIn(netns: string, settings: Record<string, string | number>, ignoreUnknown = false): Promise<void> {
  const kv = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  await run('nsenter', nsenterArgs(netns, ['sysctl', '-q', ...(ignoreUnknown ? ['-e'] : []), '-w', ...kv]));
}

/**
 * Like Promise.all, but waits for every promise to settle before rejecting with the
 * first error: nothing started in parallel is still running when the caller cleans up.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
