/**
 * The lab's long-lived processes (NATS, pod daemons, agents): started detached with their
 * output in a log file, found again through /proc, and stopped only after checking that
 * the PID still runs what we started (its cmdline holds one of our markers).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Started {
  pid: number;
  /** Resolves with a description once the process exits (`exit code 1`, `signal SIGKILL`). */
  exited: Promise<string>;
}

/**
 * Starts a process detached from the CLI (own process group, no stdin), stdout and stderr
 * appended to `logFile`, so it outlives the command that started it.
 */
export function spawnDetached(cmd: string, args: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): Promise<Started> {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: env ?? process.env });
    return new Promise((resolve, reject) => {
      child.once('error', (err) => reject(new Error(`start ${cmd}: ${err.message}`)));
      child.once('spawn', () => {
        const exited = new Promise<string>((res) =>
          child.once('exit', (code, sig) => res(sig ? `signal ${sig}` : `exit code ${code}`)),
        );
        child.unref();
        resolve({ pid: child.pid!, exited });
      });
    });
  } finally {
    closeSync(fd);
  }
}

/** A process's argv from /proc (empty strings dropped: a changed title is NUL-padded), or undefined when gone. */
export async function procArgv(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s) => s !== '');
  } catch {
    return undefined;
  }
}

/**
 * True when argv holds `marker` as whole words: `tp-agent n1` matches the title
 * `tp-agent n1` but not `tp-agent n10`.
 */
export function argvMatches(argv: readonly string[], markers: readonly string[]): boolean {
  const joined = ` ${argv.join(' ')} `;
  return markers.some((m) => joined.includes(` ${m} `));
}

/** True while the process exists and is not a zombie. */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const st = await readFile(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) S ...`: comm may hold spaces and parentheses, the state follows the last ')'.
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * SIGTERM, then SIGKILL whatever is still alive after `graceMs`; waits (bounded) until
 * all are gone. Returns the PIDs that could not be killed (should be none).
 */
export async function terminate(pids: readonly number[], graceMs = 2000): Promise<number[]> {
  const signal = (sig: NodeJS.Signals, list: readonly number[]) => {
    for (const pid of list) {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  const waitGone = async (list: readonly number[], ms: number) => {
    const deadline = Date.now() + ms;
    let left = [...list];
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(25);
      left = (await Promise.all(left.map(async (p) => ((await isAlive(p)) ? p : -1)))).filter((p) => p >= 0);
    }
    return left;
  };
  signal('SIGTERM', pids);
  const stubborn = await waitGone(pids, graceMs);
  signal('SIGKILL', stubborn);
  return waitGone(stubborn, 1000);
}

/** Every PID in /proc. */
async function allPids(): Promise<number[]> {
  const names = await readdir('/proc');
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}

/**
 * Processes inside any of the given network namespaces (by the inode of their
 * /run/netns file), as `ip netns pids` finds them, in one pass over /proc.
 */
export async function pidsInNetns(netnsPaths: readonly string[]): Promise<Map<number, string>> {
  const inodes = new Map<string, string>();
  for (const p of netnsPaths) {
    try {
      inodes.set(`net:[${(await stat(p)).ino}]`, basename(p));
    } catch {
      /* not there */
    }
  }
  const out = new Map<number, string>();
  if (inodes.size === 0) return out;
  for (const pid of await allPids()) {
    try {
      const ns = inodes.get(await readlink(`/proc/${pid}/ns/net`));
      if (ns) out.set(pid, ns);
    } catch {
      /* exited, or a kernel thread */
    }
  }
  return out;
}

/** Processes whose argv satisfies `pred` (one pass over /proc). */
export async function findProcesses(pred: (argv: string[]) => boolean): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await allPids()) {
    const argv = await procArgv(pid);
    if (argv && argv.length > 0 && pred(argv)) out.push(pid);
  }
  return out;
}

/** The last lines of a log file, for error messages. */
export async function logTail(file: string, lines = 10): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
