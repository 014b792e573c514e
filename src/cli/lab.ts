import type { Command } from 'commander';

// Placeholder until the lab lands (being written now); replaced, not kept.
export function registerLabCommands(program: Command): void {
  void program;
}
