// `taskmill schedules`: every schedule with its rule, state, last run, next fire times and last skip.
import type { Command } from 'commander';
import { withMill } from '../open.js';
import { printJson, printLine, scheduleJson, schedulesTable } from '../output.js';

export function schedulesCommand(program: Command): void {
  program
    .command('schedules')
    .description('list the recurring schedules (from the config file and from "taskmill schedule add") and when they fire next')
    .option('--json', 'print a JSON array with every field')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withMill(command, async (mill) => {
        const schedules = await mill.schedules();
        if (flags.json) printJson(schedules.map(scheduleJson));
        else printLine(schedules.length > 0 ? schedulesTable(schedules) : 'no schedules');
      });
    });
}
