// `taskmill summary [--json]`: every running module's summary tables (Maint::Daemon::Summary).
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { TaskmillError } from '../../model/errors.js';
import type { ModuleSummary } from '../../daemon/module.js';
import { askDaemon } from '../../daemon/control-socket.js';
import { findDaemon } from '../../daemon/pid-file.js';
import { globalOptions } from '../open.js';
import { printJson, printLine, summaryTables } from '../output.js';
import { EXIT_NOT_RUNNING } from './status.js';

export function summaryCommand(program: Command): void {
  program
    .command('summary')
    .description("every running module's summary")
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, command: Command) => {
      const config = loadConfig({ file: globalOptions(command).config });
      if ((await findDaemon(config.varDir)).pid === null) {
        printLine('the daemon is not running; start it with "taskmill start".');
        process.exitCode = EXIT_NOT_RUNNING;
        return;
      }
      let summaries: { module: string; summaries: ModuleSummary[] }[];
      try {
        summaries = await askDaemon(config.varDir, 'summary', 15_000);
      } catch (err) {
        throw new TaskmillError('WAIT_TIMEOUT', `could not get the summary: ${(err as Error).message}`);
      }
      if (flags.json) printJson(summaries);
      else printLine(summaryTables(summaries));
    });
}
