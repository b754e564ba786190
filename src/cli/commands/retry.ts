// `taskmill retry ID`: puts a FAILED or CANCELLED task back to WAITING and prints its id and new status.
import type { Command } from 'commander';
import { taskId } from '../args.js';
import { withMill } from '../open.js';
import { printLine, taskStatusLine } from '../output.js';

export function retryCommand(program: Command): void {
  program
    .command('retry')
    .description('move a FAILED or CANCELLED task back to WAITING with a fresh attempt budget')
    .argument('<id>', 'task id')
    .action(async (idText: string, _flags: object, command: Command) => {
      const id = taskId(idText);
      await withMill(command, async (mill) => printLine(taskStatusLine(await mill.retry(id))));
    });
}
