// `taskmill schedule add|rm|pause|resume|run NAME`: manages the schedules kept in the database.
// Schedules from the config file are changed in the file; the client refuses to change them here.
import type { Command } from 'commander';
import { InvalidInputError } from '../../model/errors.js';
import { checkScheduleName, type ScheduleSpec, toDefinition } from '../../scheduler/reconcile.js';
import { payload } from '../args.js';
import { withMill } from '../open.js';
import { printLine, scheduleLine } from '../output.js';

interface ScheduleAddFlags {
  task: string;
  every?: string;
  cron?: string;
  tz?: string;
  payload?: string;
  catchUp?: string;
  overlap?: string;
  paused?: boolean;
}

export function scheduleCommand(program: Command): void {
  const schedule = program
    .command('schedule')
    .description('add, change, remove, pause, resume or run a schedule now (list them with "taskmill schedules")');

  schedule
    .command('add')
    .description('create a schedule, or replace the one of the same name; prints when it fires next')
    .argument('<name>', 'schedule name: letters, digits and "_.:/-", e.g. "nightly-report"')
    .requiredOption('--task <name>', 'the task each occurrence adds, e.g. "send-report"')
    .option('--every <duration>', 'fire at this interval, counted from now, e.g. "30s" or "5 minutes"')
    .option('--cron <expression>', 'fire by a cron rule: 5 fields, or 6 with seconds first, e.g. "0 3 * * *"')
    .option('--tz <zone>', 'IANA time zone of the cron rule, e.g. "Europe/Berlin" (default: this host\'s)')
    .option('--payload <json>', 'payload of each task as JSON, or @FILE to read it from a file (default {})')
    .option('--catch-up <policy>', 'after downtime run the last missed occurrence, none, or all of them: last, none or all (default last)')
    .option('--overlap <policy>', 'while the previous task is WAITING or STARTED: skip the new one, or allow it (default skip)')
    .option('--paused', 'create it paused; "taskmill schedule resume" starts it')
    .action(async (name: string, flags: ScheduleAddFlags, command: Command) => {
      const spec = scheduleSpec(flags);
      // Checked before the database is opened, so bad input never waits on a connection; the task name
      // is checked by the client, against the tasks folder.
      toDefinition(checkScheduleName(name), spec, 'api', (task) => task);
      await withMill(command, async (mill) => printLine(scheduleLine(await mill.schedule(name, spec))));
    });

  schedule
    .command('rm')
    .description('remove a schedule (its tasks already added stay)')
    .argument('<name>', 'schedule name')
    .action(async (name: string, _flags: object, command: Command) => {
      await withMill(command, async (mill) => {
        if (!(await mill.unschedule(name))) throw unknownSchedule(name);
        printLine(`${name}: removed`);
      });
    });

  schedule
    .command('pause')
    .description('stop a schedule from firing until it is resumed')
    .argument('<name>', 'schedule name')
    .action(async (name: string, _flags: object, command: Command) => {
      await withMill(command, async (mill) => printLine(scheduleLine(await mill.setScheduleEnabled(name, false))));
    });

  schedule
    .command('resume')
    .description('start a paused schedule again, counting from now (missed occurrences are not run)')
    .argument('<name>', 'schedule name')
    .action(async (name: string, _flags: object, command: Command) => {
      await withMill(command, async (mill) => printLine(scheduleLine(await mill.setScheduleEnabled(name, true))));
    });

  schedule
    .command('run')
    .description('add one task of a schedule now, whatever its rule, state or overlap policy; prints the task id')
    .argument('<name>', 'schedule name')
    .action(async (name: string, _flags: object, command: Command) => {
      await withMill(command, async (mill) => printLine(String((await mill.runSchedule(name)).id)));
    });
}

/** The flags as the client's ScheduleSpec; it validates them and names the schedule and field in its messages. */
function scheduleSpec(f: ScheduleAddFlags): ScheduleSpec {
  const spec: ScheduleSpec = { task: f.task, enabled: !f.paused };
  if (f.every !== undefined) spec.every = f.every;
  if (f.cron !== undefined) spec.cron = f.cron;
  if (f.tz !== undefined) spec.timezone = f.tz;
  if (f.payload !== undefined) spec.payload = payload(f.payload);
  if (f.catchUp !== undefined) spec.catchUp = f.catchUp as ScheduleSpec['catchUp'];
  if (f.overlap !== undefined) spec.overlap = f.overlap as ScheduleSpec['overlap'];
  return spec;
}

function unknownSchedule(name: string): InvalidInputError {
  return new InvalidInputError(`no schedule named "${name}"; list them with "taskmill schedules".`);
}
