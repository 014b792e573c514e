import { defineConfig } from 'vitest/config';

// Three projects, run by `make test`:
//   unit      pure TypeScript, no privileges
//   datapath  loads the real BPF object and runs BPF_PROG_TEST_RUN (root)
//   e2e       builds labs of network namespaces (root); one file at a time, since
//             a lab owns fixed names (tp-*) on the machine: the Makefile runs it with
//             --no-file-parallelism (a per-project fileParallelism is not honoured)
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'datapath', include: ['test/datapath/**/*.test.ts'], testTimeout: 30_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
