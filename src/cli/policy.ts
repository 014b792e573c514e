import type { Command } from 'commander';

// Placeholder until apply/delete/get land (being written now); replaced, not kept.
export function registerPolicyCommands(program: Command): void {
  void program;
}
