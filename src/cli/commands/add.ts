// `taskmill add NAME`: adds one task and prints only its id, so a script can capture it.
import type { Command } from 'commander';
import type { AddOptions } from '../../client/taskmill.js';
import { parseDuration } from '../../config/duration.js';
import { InvalidInputError } from '../../model/errors.js';
import { idList, isoTime, payload, wholeNumber } from '../args.js';
import { withMill } from '../open.js';
import { printLine } from '../output.js';

interface AddFlags {
  payload?: string;
  in?: string;
  at?: string;
  after?: string;
  priority?: string;
  queue?: string;
  unique?: string;
  maxAttempts?: string;
  note?: string;
}

export function addCommand(program: Command): void {
  program
    .command('add')
    .description('add a task; prints its id (or, with --unique, the id of the live task holding that key)')
    .argument('<name>', 'task name: the handler file under the tasks folder, e.g. "send-email" or "billing/charge"')
    .option('--payload <json>', 'payload as JSON, or @FILE to read it from a file (default {})')
    .option('--in <duration>', 'start no sooner than this from now, e.g. "90s" or "2 hours"')
    .option('--at <time>', 'start no sooner than this ISO-8601 time, e.g. 2026-12-01T09:00:00Z')
    .option('--after <ids>', 'comma-separated ids of tasks that must complete first')
    .option('--priority <n>', 'higher runs first (default 0 or the handler\'s option)')
    .option('--queue <name>', 'queue name (default "default" or the handler\'s option)')
    .option('--unique <key>', 'do not add a second live task with this key')
    .option('--max-attempts <n>', 'attempts before the task fails for good')
    .option('--note <text>', 'a free-text note stored with the task')
    .action(async (name: string, flags: AddFlags, command: Command) => {
      const options = addOptions(flags);
      const data = flags.payload === undefined ? {} : payload(flags.payload);
      await withMill(command, async (mill) => {
        const task = await mill.add(name, data, options);
        printLine(String(task.id));
      });
    });
}

/** Checks every flag before the database is opened, so bad input never waits on a connection. */
function addOptions(f: AddFlags): AddOptions {
  if (f.in !== undefined && f.at !== undefined) {
    throw new InvalidInputError('give either --in or --at, not both.');
  }
  const options: AddOptions = {};
  if (f.in !== undefined) options.delay = parseDuration(f.in, '--in');
  if (f.at !== undefined) options.runAt = isoTime(f.at, '--at');
  if (f.after !== undefined) options.after = idList(f.after, '--after');
  if (f.priority !== undefined) options.priority = wholeNumber(f.priority, '--priority', -1_000_000, 1_000_000);
  if (f.maxAttempts !== undefined) options.maxAttempts = wholeNumber(f.maxAttempts, '--max-attempts', 1, 1000);
  if (f.queue !== undefined) options.queue = f.queue;
  if (f.unique !== undefined) options.uniqueKey = f.unique;
  if (f.note !== undefined) options.note = f.note;
  return options;
}
