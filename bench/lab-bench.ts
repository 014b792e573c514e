/**
 * What the lab benchmarks share: the CLI, commands inside lab namespaces, servers they
 * start (ended by PID), spread statistics. Every child is bounded in time.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TcxLink } from '../src/bpf/link.js';
import { BpfObject, BpfProgram } from '../src/bpf/object.js';
import { nsenterArgs } from '../src/lab/exec.js';
import { BPFFS_ROOT, CLI_ENTRY, PACKAGE_ROOT } from '../src/paths.js';

/** Runs the tcplane CLI; returns its stdout when captured. */
export function tcplane(args: string[], opts: { capture?: boolean; timeoutMs?: number } = {}): string {
  const r = spawnSync(process.execPath, [CLI_ENTRY, ...args], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', opts.capture ? 'pipe' : 'inherit', 'inherit'],
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`tcplane ${args.slice(0, 3).join(' ')}…: exit ${r.status ?? r.signal}`);
  return r.stdout ?? '';
}

/** Runs argv in a lab network namespace; returns stdout. */
export function inNetns(netns: string, argv: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync('nsenter', nsenterArgs(netns, argv), {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
}

/** A long-running process in a lab namespace, started by us and ended by its PID. */
export class NetnsProcess {
  private constructor(private readonly child: ChildProcess) {}

  static async start(netns: string, argv: string[], settleMs = 300): Promise<NetnsProcess> {
    const child = spawn('nsenter', nsenterArgs(netns, argv), { stdio: ['ignore', 'ignore', 'inherit'] });
    const p = new NetnsProcess(child);
    await sleep(settleMs);
    if (child.exitCode !== null) throw new Error(`${argv.join(' ')} in ${netns}: exited ${child.exitCode}`);
    return p;
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.pid) process.kill(this.child.pid, 'SIGKILL');
  }
}

/**
 * The lab's own plain baseline: while off(), every tcx link the lab's agents pinned
 * (pod veths, uplinks) runs build/bench_empty.bpf.o's program, which passes every packet
 * untouched, instead of tcplane's; on() puts tcplane's programs back, the same ones. The
 * links and the agents stay as they are, so plain rounds can alternate with tcplane's in
 * one lab (across two labs the VM drifts more than the costs measured). The baseline
 * still runs one empty program per hook: 13 ns each in BPF_PROG_TEST_RUN
 * (bench/services-datapath.ts), some 0.3 µs of a connection's 75.
 */
export class TcplaneHooks {
  private readonly empty = BpfObject.load(join(PACKAGE_ROOT, 'build', 'bench_empty.bpf.o'));
  private readonly links: { link: TcxLink; program: BpfProgram }[] = [];
  private isOff = false;

  constructor(root = BPFFS_ROOT) {
    for (const node of existsSync(root) ? readdirSync(root) : []) {
      const dir = join(root, node, 'links');
      for (const name of existsSync(dir) ? readdirSync(dir) : []) {
        const link = TcxLink.adopt(join(dir, name));
        if (link) this.links.push({ link, program: BpfProgram.byId(link.programId()) });
      }
    }
    if (this.links.length === 0) throw new Error(`bench: no tcx link pinned under ${root}`);
  }

  get count(): number {
    return this.links.length;
  }

  off(): void {
    const prog = this.empty.program('tp_bench_empty');
    for (const { link } of this.links) link.replace(prog);
    this.isOff = true;
  }

  on(): void {
    for (const { link, program } of this.links) link.replace(program);
    this.isOff = false;
  }

  /** Runs fn with tcplane's programs off, and always back on after. */
  without<T>(fn: () => T): T {
    this.off();
    try {
      return fn();
    } finally {
      this.on();
    }
  }

  close(): void {
    if (this.isOff) this.on();
    for (const { link, program } of this.links) {
      link.close();
      program.release();
    }
    this.empty.close();
  }
}

/** bench/connrate.c, built into build/bench/connrate when missing or older than its source (clang is a build dependency). */
export function connrateBinary(): string {
  const src = join(PACKAGE_ROOT, 'bench', 'connrate.c');
  const bin = join(PACKAGE_ROOT, 'build', 'bench', 'connrate');
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(join(PACKAGE_ROOT, 'build', 'bench'), { recursive: true });
    execFileSync('clang', ['-O2', '-Wall', '-Werror', '-o', bin, src], { stdio: 'inherit' });
  }
  return bin;
}

export interface Spread {
  min: number;
  median: number;
  max: number;
  samples: number[];
}

export function spread(samples: number[]): Spread {
  const s = [...samples].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]!, samples };
}

export const fmt = (s: Spread, digits = 0, unit = '') =>
  `${s.median.toFixed(digits)}${unit} (min ${s.min.toFixed(digits)}, max ${s.max.toFixed(digits)})`;

/** Lab down, ignoring failure (before a run, and in finally blocks). */
export function labDown(): void {
  try {
    tcplane(['lab', 'down']);
  } catch (err) {
    console.error(`lab down: ${(err as Error).message}`);
  }
}

export const num = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}: expected a positive number`);
  return v;
};
