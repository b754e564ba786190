// `taskmill tasks`: the newest tasks as a table, or as JSON for scripts; the filters mirror the client's
// query (status, name, queue, schedule, text) and `--cursor` continues a listing where the last one ended.
import type { Command } from 'commander';
import { list, wholeNumber } from '../args.js';
import { withMill } from '../open.js';
import { printJson, printLine, taskJson, taskListJson, tasksTable } from '../output.js';
import type { TaskStatus } from '../../model/task.js';
import type { TaskListItem, TaskQuery } from '../../model/query.js';
import type { Taskmill } from '../../client/taskmill.js';

interface TasksFlags {
  status?: string[];
  name?: string;
  queue?: string;
  schedule?: string;
  text?: string;
  cursor?: string;
  limit: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Up to `limit` tasks by keyset pages of at most 500; the cursor after the last one shown, if more follow. */
async function collectPages(mill: Taskmill, q: TaskQuery, limit: number): Promise<{ tasks: TaskListItem[]; next: string | null }> {
  const tasks: TaskListItem[] = [];
  let cursor = q.cursor ?? null;
  for (;;) {
    const page = await mill.query({ ...q, limit: Math.min(500, limit - tasks.length), cursor });
    tasks.push(...page.tasks);
    cursor = page.nextCursor;
    if (!cursor || tasks.length >= limit) return { tasks, next: cursor };
  }
}

export function tasksCommand(program: Command): void {
  program
    .command('tasks')
    .description('list tasks, newest first')
    .option('--status <status>', 'only this status (WAITING, STARTED, COMPLETED, FAILED, CANCELLED); repeat or comma-separate', collect)
    .option('--name <name>', 'only tasks of this name')
    .option('--queue <queue>', 'only tasks in this queue')
    .option('--schedule <name>', 'only tasks this schedule created')
    .option('--text <text>', 'only tasks whose payload, note or error contains this (any case)')
    .option('--cursor <cursor>', 'continue after the last task of a previous listing (it prints the cursor)')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print a JSON array')
    .action(async (flags: TasksFlags, command: Command) => {
      const limit = wholeNumber(flags.limit, '--limit', 1, 100_000);
      // The client validates each status and lists the accepted ones.
      const status = list(flags.status).map((s) => s.toUpperCase() as TaskStatus);
      await withMill(command, async (mill) => {
        if (flags.json && flags.schedule === undefined && flags.text === undefined && flags.cursor === undefined) {
          // Every field, output and result included, as scripts have always read them.
          const tasks = await mill.list({ status: status.length > 0 ? status : undefined, name: flags.name, queue: flags.queue, limit });
          printJson(tasks.map(taskJson));
          return;
        }
        const { tasks, next } = await collectPages(
          mill,
          {
            status: status.length > 0 ? status : undefined,
            name: flags.name,
            queue: flags.queue,
            schedule: flags.schedule,
            text: flags.text,
            cursor: flags.cursor,
          },
          limit,
        );
        if (flags.json) {
          // A listing with the new filters gives list items (no output, result or stack: "show" has them).
          printJson(tasks.map(taskListJson));
          if (next) process.stderr.write(`more: --cursor ${next}\n`);
          return;
        }
        printLine(tasks.length > 0 ? tasksTable(tasks) : 'no tasks found');
        if (next) printLine(`more: taskmill tasks … --cursor ${next}`);
      });
    });
}
