// `taskmill show ID`: every field of one task, including its output, error and stack.
import type { Command } from 'commander';
import { TaskNotFoundError } from '../../model/errors.js';
import { taskId } from '../args.js';
import { withMill } from '../open.js';
import { printJson, printLine, taskDetails, taskJson } from '../output.js';

export function showCommand(program: Command): void {
  program
    .command('show')
    .description('show one task in full')
    .argument('<id>', 'task id')
    .option('--json', 'print the task as a JSON object')
    .action(async (idText: string, flags: { json?: boolean }, command: Command) => {
      const id = taskId(idText);
      await withMill(command, async (mill) => {
        const task = await mill.get(id);
        if (!task) throw new TaskNotFoundError(id);
        if (flags.json) printJson(taskJson(task));
        else printLine(taskDetails(task));
      });
    });
}
