// Built-in module TaskWorker: the task worker. Discards itself (finishing its running tasks first,
// claiming no new ones) after `maxTasks` tasks or once its memory passes `maxRssMb`, so a daemon
// that runs for weeks stays bounded; the main daemon starts a fresh one at once.
import type { BuiltInModuleOptions } from '../../config/schema.js';
import { isoSeconds } from '../../model/clock.js';
import type { Worker } from '../../worker/worker.js';
import type { DaemonModule, ModuleContext } from '../module.js';

export const settings = { sleep: '1s' };

export default function taskWorker(ctx: ModuleContext): DaemonModule {
  // Validated by the config schema (BUILT_IN_MODULE_OPTIONS.TaskWorker) when the file was loaded.
  const { maxTasks, maxRssMb = 512, concurrency, queues } = ctx.options as BuiltInModuleOptions<'TaskWorker'>;
  let worker: Worker | null = null;

  const retire = async (why: string) => {
    ctx.log.info(`retiring this worker: ${why}; a fresh one takes over`, { processed: worker?.processed });
    await worker?.stop({ timeoutMs: ctx.config.worker.stopTimeout });
    worker = null;
    return false;
  };

  return {
    async run() {
      if (!worker) {
        const mill = await ctx.mill();
        worker = mill.worker({ concurrency, queues, maxTasks, logger: ctx.log });
        worker.start();
        ctx.log.info('worker started', { id: worker.id, concurrency: concurrency ?? ctx.config.worker.concurrency, maxTasks });
      }
      if (worker.exhausted) {
        await worker.whenIdle();
        return retire(`it ran its ${maxTasks} tasks`);
      }
      const rssMb = process.memoryUsage().rss / 1_048_576;
      if (maxRssMb > 0 && rssMb > maxRssMb) return retire(`its memory (${Math.round(rssMb)} MB) passed maxRssMb ${maxRssMb}`);
      return true;
    },
    async stop({ timeoutMs }) {
      await worker?.stop({ timeoutMs });
      worker = null;
    },
    summary() {
      const tasks = worker?.runningTasks() ?? [];
      return {
        header: `Task worker (${worker?.processed ?? 0} tasks done by this process)`,
        columns: [
          { name: 'id', displayName: 'ID', size: 8 },
          { name: 'name', displayName: 'Task', size: 30 },
          { name: 'attempt', displayName: 'Attempt', size: 8 },
          { name: 'startedAt', displayName: 'Started', size: 20 },
        ],
        rows: tasks.map((t) => ({
          id: t.id,
          name: t.name,
          attempt: `${t.attempts}/${t.maxAttempts}`,
          startedAt: t.startedAt ? isoSeconds(t.startedAt) : null,
        })),
        noDataMessage: 'No task is running.',
      };
    },
  };
}
