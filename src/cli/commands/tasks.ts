// `taskmill tasks`: the newest tasks as a table, or as JSON for scripts.
import type { Command } from 'commander';
import { list, wholeNumber } from '../args.js';
import { withMill } from '../open.js';
import { printJson, printLine, taskJson, tasksTable } from '../output.js';
import type { TaskStatus } from '../../model/task.js';

interface TasksFlags {
  status?: string[];
  name?: string;
  queue?: string;
  limit: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function tasksCommand(program: Command): void {
  program
    .command('tasks')
    .description('list tasks, newest first')
    .option('--status <status>', 'only this status (WAITING, STARTED, COMPLETED, FAILED, CANCELLED); repeat or comma-separate', collect)
    .option('--name <name>', 'only tasks of this name')
    .option('--queue <queue>', 'only tasks in this queue')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print a JSON array')
    .action(async (flags: TasksFlags, command: Command) => {
      const limit = wholeNumber(flags.limit, '--limit', 1, 100_000);
      // The client validates each status and lists the accepted ones.
      const status = list(flags.status).map((s) => s.toUpperCase() as TaskStatus);
      await withMill(command, async (mill) => {
        const tasks = await mill.list({
          status: status.length > 0 ? status : undefined,
          name: flags.name,
          queue: flags.queue,
          limit,
        });
        if (flags.json) printJson(tasks.map(taskJson));
        else printLine(tasks.length > 0 ? tasksTable(tasks) : 'no tasks found');
      });
    });
}
