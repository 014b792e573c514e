import { defineConfig } from 'vitest/config';

// Three projects, run by `make test`:
//   unit      pure TypeScript, no privileges
//   datapath  loads the real BPF object and runs BPF_PROG_TEST_RUN (root)
//   e2e       builds labs of network namespaces (root); one file at a time, since
//             a lab owns fixed names (tp-*) on the machine: one fork for the project
//             here, and --no-file-parallelism in the Makefile (a per-project
//             fileParallelism is not honoured)
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'datapath', include: ['test/datapath/**/*.test.ts'], testTimeout: 30_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // One worker, so one file at a time even when vitest is run by hand.
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
