/** Where tcplane's files are, whether running from dist/ (built) or src/ (tests). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'tcplane') return dir;
    dir = dirname(dir);
  }
  throw new Error('paths: cannot find the tcplane package root');
}

export const PACKAGE_ROOT = findRoot();
/** The datapath object `make` builds; nodes need no compiler at run time. */
export const DATAPATH_OBJECT = join(PACKAGE_ROOT, 'build', 'tcplane.bpf.o');
export const BENCH_EMPTY_OBJECT = join(PACKAGE_ROOT, 'build', 'bench_empty.bpf.o');
export const CLI_ENTRY = join(PACKAGE_ROOT, 'bin', 'tcplane.js');
/** Default bpffs directory; each node pins under `<root>/<node>/`. */
export const BPFFS_ROOT = '/sys/fs/bpf/tcplane';
