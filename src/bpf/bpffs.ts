import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Makes sure a bpffs is mounted at `root` (default /sys/fs/bpf), mounting one when the
 * machine has none there, as Cilium's agent does. Pins live only on a bpffs.
 */
export function ensureBpffs(root = '/sys/fs/bpf'): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  if (mounts.split('\n').some((l) => l.split(' ')[1] === root && l.split(' ')[2] === 'bpf')) return;
  execFileSync('mount', ['-t', 'bpf', 'bpf', root], { stdio: 'pipe' });
}
