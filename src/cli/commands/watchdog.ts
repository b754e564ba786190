// `taskmill watchdog`: starts the daemon if it is not running, does nothing otherwise; safe from cron
// every minute, even before the database is up (the daemon waits for it).
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { runningPid } from '../../daemon/supervisor.js';
import { globalOptions } from '../open.js';
import { printLine } from '../output.js';
import { startDetached } from './start.js';

export function watchdogCommand(program: Command): void {
  program
    .command('watchdog')
    .description('start the daemon unless it runs (for cron, every minute)')
    .action(async (_flags: object, command: Command) => {
      const configFile = globalOptions(command).config;
      const config = loadConfig({ file: configFile });
      const { pid, stale } = runningPid(config.varDir);
      if (pid !== null) {
        printLine(`the daemon is running (pid ${pid})`);
        return;
      }
      if (stale !== null) printLine(`removed a stale pid file (pid ${stale} is not running)`);
      await startDetached(config, {}, configFile);
    });
}
