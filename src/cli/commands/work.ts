// `taskmill work`: a worker and the scheduler in the foreground until SIGINT or SIGTERM; a second
// signal forces the stop.
import { existsSync, watch } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../config/load.js';
import type { Command } from 'commander';
import type { Taskmill } from '../../client/taskmill.js';
import { formatDuration } from '../../config/duration.js';
import type { Scheduler } from '../../scheduler/scheduler.js';
import { notifyChannels } from '../../notify/channels.js';
import { Notifier } from '../../notify/notifier.js';
import type { Worker } from '../../worker/worker.js';
import { list, wholeNumber } from '../args.js';
import { openMill } from '../open.js';
import { printError, printLine, stderrLogger } from '../output.js';

interface WorkFlags {
  concurrency?: string;
  queue?: string[];
  scheduler: boolean;
}

export function workCommand(program: Command): void {
  program
    .command('work')
    .description('run a worker and the scheduler in the foreground (Ctrl-C stops gracefully, a second Ctrl-C forces)')
    .option('--concurrency <n>', 'tasks run at once (default: worker.concurrency in the config)')
    .option('--queue <queue...>', 'only take tasks from these queues (default: all)')
    .option('--no-scheduler', 'run no scheduler here (schedules fire from another process)')
    .action(async (flags: WorkFlags, command: Command) => {
      const concurrency = flags.concurrency === undefined ? undefined : wholeNumber(flags.concurrency, '--concurrency', 1, 1000);
      const queues = list(flags.queue);
      const mill = await openMill(command);
      const worker = mill.worker({ concurrency, queues: queues.length > 0 ? queues : undefined, logger: stderrLogger });
      const scheduler = flags.scheduler ? mill.scheduler({ logger: stderrLogger }) : null;
      const stopped = untilStopped(mill, worker, scheduler);
      let unwatch = () => {};
      if (scheduler) {
        await reconcile(mill, mill.config.schedules);
        scheduler.start();
        unwatch = watchSchedules(mill);
      }
      worker.start();
      const { tasksDir } = mill.config;
      if (!existsSync(tasksDir)) printError(`warning: the tasks folder ${tasksDir} does not exist; tasks will fail until it does.`);
      const slots = concurrency ?? mill.config.worker.concurrency;
      const only = queues.length > 0 ? `, queues ${queues.join(', ')}` : '';
      printLine(`taskmill worker ${worker.id} ready: ${slots} slots, tasks from ${tasksDir}, database ${mill.store.where}${only}`);
      // Notifications: delivered from here too when a channel is configured (the daemon's Notifier
      // module does it under the supervisor); claims are leased, so any number of senders is safe.
      const notifier = notifyChannels(mill.config).length > 0
        ? new Notifier({ store: mill.store, config: mill.config, log: stderrLogger, role: 'work' })
        : null;
      notifier?.start();
      await stopped;
      await notifier?.stop();
      unwatch();
      await mill.close();
    });
}

async function reconcile(mill: Taskmill, entries: readonly unknown[]): Promise<void> {
  const report = await mill.reconcileSchedules(entries);
  for (const e of report.errors) printError(`warning: ignored a schedule in the config: ${e.message}`);
  const changes = [
    ...report.added.map((n) => `added ${n}`),
    ...report.changed.map((n) => `changed ${n}`),
    ...report.removed.map((n) => `removed ${n}`),
  ];
  if (changes.length > 0) printLine(`schedules from the config: ${changes.join(', ')}`);
}

/**
 * Re-reads the config file when it changes and applies its schedules at once; an invalid file is
 * reported and the schedules stay as they were.
 */
function watchSchedules(mill: Taskmill): () => void {
  const file = mill.config.file;
  if (!file) return () => {};
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(path.dirname(file), { persistent: false }, (_event, name) => {
    if (name !== path.basename(file)) return;
    clearTimeout(timer);
    // Editors write in several steps: wait for the file to settle.
    timer = setTimeout(() => {
      let entries: readonly unknown[];
      try {
        entries = loadConfig({ file }).schedules;
      } catch (err) {
        printError(`warning: the changed config is invalid, schedules unchanged: ${(err as Error).message}`);
        return;
      }
      reconcile(mill, entries).catch((err: Error) => printError(`warning: could not apply the schedules: ${err.message}`));
    }, 200);
  });
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}

/**
 * Resolves once the worker has stopped after a signal. The first lets running tasks finish for
 * `stopTimeout`; a second cuts that to `forceStopTimeout`; the rest go back to WAITING. A third exits at once.
 */
function untilStopped(mill: Taskmill, worker: Worker, scheduler: Scheduler | null): Promise<void> {
  const { stopTimeout, forceStopTimeout } = mill.config.worker;
  return new Promise((resolve, reject) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        printLine(
          `${signal}: stopping; waiting up to ${formatDuration(stopTimeout)} for ${worker.activeCount} running task(s). ` +
            'Send it again to force.',
        );
        Promise.all([worker.stop({ timeoutMs: stopTimeout }), scheduler?.stop()]).then(([{ released }]) => {
          if (released > 0) printLine(`released ${released} unfinished task(s) back to WAITING`);
          resolve();
        }, reject);
      } else if (signals === 2) {
        printLine(`${signal}: forcing the stop; running tasks get ${formatDuration(forceStopTimeout)}, then go back to WAITING.`);
        void worker.stop({ timeoutMs: forceStopTimeout });
      } else {
        printError(`${signal} again: exiting now; tasks still running here run again once their lease expires.`);
        process.exit(1);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
