#!/usr/bin/env node
// The taskmill command. Every failure ends as one line on stderr and an exit code:
// 0 done, 1 failed at run time, 2 bad usage or bad input.
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { type ErrorCode, TaskmillError } from '../model/errors.js';
import { addCommand } from './commands/add.js';
import { cancelCommand } from './commands/cancel.js';
import { initCommand } from './commands/init.js';
import { migrateCommand } from './commands/migrate.js';
import { retryCommand } from './commands/retry.js';
import { scheduleCommand } from './commands/schedule.js';
import { schedulesCommand } from './commands/schedules.js';
import { showCommand } from './commands/show.js';
import { tasksCommand } from './commands/tasks.js';
import { workCommand } from './commands/work.js';
import { listCommand } from './commands/list.js';
import { startCommand } from './commands/start.js';
import { statusCommand } from './commands/status.js';
import { stopCommand } from './commands/stop.js';
import { summaryCommand } from './commands/summary.js';
import { watchdogCommand } from './commands/watchdog.js';
import { printError } from './output.js';
// Retention
import { pruneCommand } from './commands/prune.js';
// --- Web: users, tokens and the web server alone.
import { userCommand } from './commands/user.js';
import { webCommand } from './commands/web.js';
import { tokenCommand } from './commands/token.js';
// --- Task queries: delete a task.
import { rmCommand } from './commands/rm.js';

const USAGE_ERRORS: readonly ErrorCode[] = [
  'INVALID_INPUT',
  'UNKNOWN_TASK',
  'UNKNOWN_PREREQUISITE',
  'CONFIG_INVALID',
  'INVALID_TRANSITION',
];

function program(): Command {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const cli = new Command('taskmill')
    .description('A durable background task daemon: add tasks, run workers, inspect what happened.')
    .version(version)
    .option('--config <path>', 'config file (default: $TASKMILL_CONFIG, else ./taskmill.config.json, else defaults)')
    .addHelpText('after', '\nTASKMILL_DATABASE overrides "database" from the config file.')
    // Errors are reported once, by run(); commander only throws them.
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, outputError: () => undefined });
  for (const register of [
    initCommand,
    migrateCommand,
    addCommand,
    tasksCommand,
    showCommand,
    cancelCommand,
    retryCommand,
    schedulesCommand,
    scheduleCommand,
    workCommand,
    startCommand,
    stopCommand,
    statusCommand,
    listCommand,
    summaryCommand,
    watchdogCommand,
    pruneCommand,
    // --- Web
    userCommand,
    webCommand,
    tokenCommand,
    // --- Task queries
    rmCommand,
  ]) {
    register(cli);
  }
  return cli;
}

async function run(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    // `status` ends with 3 when the daemon is not running (the LSB convention).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version end this way too, having printed to stdout.
      if (err.exitCode === 0) return 0;
      if (err.code === 'commander.help') {
        printError('no command given; run "taskmill --help" to see the commands.');
      } else {
        printError(err.message.replace(/^error: /, ''));
      }
      return 2;
    }
    if (err instanceof TaskmillError) {
      printError(err.message);
      return USAGE_ERRORS.includes(err.code) ? 2 : 1;
    }
    printError(err instanceof Error ? err.message : String(err));
    return 1;
  }
}

const code = await run(process.argv);
// Exit once the output is flushed: a database client left half-open must not keep the process alive.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
