// `taskmill stop [--force]`: stops the daemon; the worker hands unfinished tasks back to WAITING.
import type { Command } from 'commander';
import { TaskmillError } from '../../model/errors.js';
import { findDaemon, processAlive } from '../../daemon/pid-file.js';
import { configForControl } from '../open.js';
import { printLine } from '../output.js';

export function stopCommand(program: Command): void {
  program
    .command('stop')
    .description('stop the daemon; running tasks get worker.stopTimeout (30 s), or worker.forceStopTimeout (5 s) with --force')
    .option('--force', 'give running tasks only worker.forceStopTimeout before they go back to WAITING')
    .action(async (flags: { force?: boolean }, command: Command) => {
      const config = configForControl(command);
      // Only a daemon that confirms itself on the control socket is signalled: a pid file naming
      // some other process (its pid reused) is stale, and that process is left alone.
      const { pid, stale } = await findDaemon(config.varDir, { clean: true });
      if (pid === null) {
        printLine(`the daemon is not running${stale !== null ? ` (removed a stale pid file: ${stale.reason})` : ''}`);
        return;
      }
      try {
        process.kill(pid, flags.force ? 'SIGUSR2' : 'SIGTERM');
      } catch (err) {
        // It ended between the check and the signal: stopped all the same.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
      const wait = (flags.force ? config.worker.forceStopTimeout : config.worker.stopTimeout) + 15_000;
      const deadline = Date.now() + wait;
      while (Date.now() < deadline) {
        if (!processAlive(pid)) {
          printLine(`taskmill daemon stopped (pid ${pid})`);
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new TaskmillError('DAEMON_FAILED', `the daemon (pid ${pid}) did not stop within ${wait / 1000} s; try "taskmill stop --force".`);
    });
}
