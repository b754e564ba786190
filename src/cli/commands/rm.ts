// `taskmill rm ID`: deletes a task for good (a running one must be cancelled first).
import type { Command } from 'commander';
import { taskId } from '../args.js';
import { withMill } from '../open.js';
import { printLine } from '../output.js';

export function rmCommand(program: Command): void {
  program
    .command('rm')
    .description('delete a task for good; a STARTED task must be cancelled first, a task others wait for kept')
    .argument('<id>', 'task id')
    .action(async (idText: string, _flags: object, command: Command) => {
      const id = taskId(idText);
      await withMill(command, async (mill) => {
        await mill.delete(id);
        printLine(`${id} deleted`);
      });
    });
}
