// `taskmill migrate`: brings the database schema up to this version of taskmill.
import type { Command } from 'commander';
import { withMill } from '../open.js';
import { printLine } from '../output.js';

export function migrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply database migrations')
    .action(async (_options: object, command: Command) => {
      await withMill(command, async (mill) => {
        const { from, to } = await mill.store.migrate();
        printLine(`${mill.store.where}: schema version ${from} → ${to}${from === to ? ' (up to date)' : ''}`);
      }, { migrate: false });
    });
}
