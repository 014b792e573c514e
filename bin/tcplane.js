#!/usr/bin/env node
// Entry point for `npx tcplane`: runs the compiled CLI (`make` builds dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('tcplane: not built yet; run `make` in the repository first\n');
  process.exit(2);
}
await import(main.href);
