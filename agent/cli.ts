import type { Command } from 'commander';

// Placeholder until the agent lands (being written now); replaced, not kept.
export function registerAgentCommand(program: Command): void {
  void program;
}
