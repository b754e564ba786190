// `taskmill stop [--force]`: stops the daemon; the worker hands unfinished tasks back to WAITING.
import type { Command } from 'commander';
import { TaskmillError } from '../../model/errors.js';
import { processAlive, runningPid } from '../../daemon/supervisor.js';
import { configForControl } from '../open.js';
import { printLine } from '../output.js';

export function stopCommand(program: Command): void {
  program
    .command('stop')
    .description('stop the daemon; running tasks get worker.stopTimeout (30 s), or worker.forceStopTimeout (5 s) with --force')
    .option('--force', 'give running tasks only worker.forceStopTimeout before they go back to WAITING')
    .action(async (flags: { force?: boolean }, command: Command) => {
      const config = configForControl(command);
      const { pid, stale } = runningPid(config.varDir);
      if (pid === null) {
        printLine(`the daemon is not running${stale !== null ? ` (removed a stale pid file of pid ${stale})` : ''}`);
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
        if (runningPid(config.varDir).pid === null && !processAlive(pid)) {
          printLine(`taskmill daemon stopped (pid ${pid})`);
          return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new TaskmillError('DAEMON_FAILED', `the daemon (pid ${pid}) did not stop within ${wait / 1000} s; try "taskmill stop --force".`);
    });
}
