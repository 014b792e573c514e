import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The datapath object `make` builds and the agent loads. */
export const OBJECT_PATH = `${ROOT}build/tcplane.bpf.o`;
export const BENCH_EMPTY_PATH = `${ROOT}build/bench_empty.bpf.o`;
/** The CLI as a user runs it. */
export const CLI = `${ROOT}bin/tcplane.js`;
