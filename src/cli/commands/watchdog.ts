// `taskmill watchdog`: starts the daemon if it is not running, does nothing otherwise; safe from cron
// every minute, even before the database is up (the daemon waits for it).
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { findDaemon } from '../../daemon/pid-file.js';
import { globalOptions } from '../open.js';
import { printLine } from '../output.js';
import { startDetached } from './start.js';
import { watchDaemons } from '../../notify/watchdog.js';

export function watchdogCommand(program: Command): void {
  program
    .command('watchdog')
    .description('start the daemon unless it runs (for cron, every minute)')
    .action(async (_flags: object, command: Command) => {
      const configFile = globalOptions(command).config;
      const config = loadConfig({ file: configFile });
      // Notifications: a host whose daemon stopped sending heartbeats is noticed here (before this
      // host's daemon is started again, or its return would hide the outage) and alerted once.
      const watch = await watchDaemons(config, (line) => printLine(line));
      try {
        const { pid, stale } = await findDaemon(config.varDir, { clean: true });
        if (pid !== null) {
          printLine(`the daemon is running (pid ${pid})`);
          return;
        }
        if (stale !== null) printLine(`removed a stale pid file (${stale.reason})`);
        await startDetached(config, {}, configFile);
      } finally {
        await watch?.deliver();
      }
    });
}
