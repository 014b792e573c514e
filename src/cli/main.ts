/**
 * tcplane command line. Each area registers its own commands:
 *   apply.ts   apply / delete (manifest.ts reads the files)
 *   get.ts     get policies / services / endpoints / nodes
 *   cluster.ts cluster init / show
 *   observe.ts observe (verdict events from every node)
 *   lab.ts     lab up / down / probe / exec / label
 *   agent      agent/cli.ts
 * Errors print as `tcplane: <message>` and exit 1 (2 for usage errors); no stack traces
 * unless TCPLANE_DEBUG is set.
 */
import { Command, CommanderError } from 'commander';
import { registerAgentCommand } from '../../agent/cli.js';
import { registerLabCommands } from './lab.js';
import { registerApplyCommands } from './apply.js';
import { registerClusterCommands } from './cluster.js';
import { registerGetCommands } from './get.js';
import { registerObserveCommand } from './observe.js';
import { VERSION } from '../version.js';

const program = new Command('tcplane')
  .description('eBPF service load balancing and network policy, one agent per node, state in NATS')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride();

registerApplyCommands(program);
registerGetCommands(program);
registerObserveCommand(program);
registerClusterCommands(program);
registerLabCommands(program);
registerAgentCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`tcplane: ${(err as Error).message}\n`);
    if (process.env.TCPLANE_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = 1;
  }
}
