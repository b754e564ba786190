// `taskmill cancel ID`: cancels a task and prints its id and new status.
import type { Command } from 'commander';
import { taskId } from '../args.js';
import { withMill } from '../open.js';
import { printLine, taskStatusLine } from '../output.js';

export function cancelCommand(program: Command): void {
  program
    .command('cancel')
    .description('cancel a task: a WAITING one at once, a STARTED one once its handler stops')
    .argument('<id>', 'task id')
    .action(async (idText: string, _flags: object, command: Command) => {
      const id = taskId(idText);
      await withMill(command, async (mill) => printLine(taskStatusLine(await mill.cancel(id))));
    });
}
