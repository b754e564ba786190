// A handler process: runs the tasks the worker's pool sends it, one at a time, and reports back over
// IPC. Started as `node [--import tsx] child.js TASKS_DIR`; never outlives the worker that started it.
import { format } from 'node:util';
import { Worker as Thread } from 'node:worker_threads';
import { attemptEnded } from '../followups.js';
import { HandlerRegistry, type TaskContext } from '../handlers.js';
import { type FromChild, fromWire, type ToChild, toWire } from './protocol.js';

const tasksDir = process.argv[2];
if (!process.send || !tasksDir) {
  process.stderr.write('this file is started by the taskmill worker (worker.isolation), not by hand\n');
  process.exit(2);
}

// No orphans: the worker gone (its channel closed), this process ends. A handler that blocks the
// event loop would never see that, so a thread watches the parent pid too, and kills the process
// when the worker died and this one was handed to another parent.
process.on('disconnect', () => process.exit(0));
const watchdog = new Thread(
  `const { workerData } = require('node:worker_threads');
   setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, 'SIGKILL'); }, 250);`,
  { eval: true, workerData: process.ppid },
);
watchdog.unref();

function send(message: FromChild): void {
  try {
    process.send?.(message, undefined, undefined, () => {});
  } catch {
    // The channel is closed: the disconnect handler ends this process.
  }
}

// One task at a time, so everything printed now belongs to it (output of a stray timer of an
// earlier task included, as it would be in-process).
for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
  console[level] = (...args: unknown[]) => send({ t: 'out', level, text: format(...args) });
}

interface Current {
  /** The run's number (from the worker), sent with every call. */
  run: number;
  /** Set when the handler returned or threw: its ctx calls nothing any more (as in-process). */
  ended: boolean;
  controller: AbortController;
  calls: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
}

const registry = new HandlerRegistry(tasksDir);
/** Handlers (per loaded version) the worker was told about: it is told once, not per task. */
const reported = new WeakSet<object>();
let current: Current | null = null;
let nextCall = 1;
let terminating = false;

// SIGTERM (timeout, cancel, stop): the handler is told through its signal and the process ends once
// it returns; one that does not is killed by the worker after its grace period.
process.on('SIGTERM', () => {
  terminating = true;
  if (!current) process.exit(0);
  // The worker sends the reason (a timeout, a cancel) as a message with the signal: let it win.
  const task = current;
  setTimeout(() => {
    if (!task.controller.signal.aborted) task.controller.abort(new Error('the handler process was told to stop'));
  }, 50).unref();
});

process.on('message', (message: ToChild) => {
  switch (message.t) {
    case 'run':
      void run(message);
      break;
    case 'abort':
      // The attempt is over for the worker: this process ends once the handler returns.
      terminating = true;
      if (current && !current.controller.signal.aborted) current.controller.abort(fromWire(message.reason));
      break;
    case 'reply': {
      const call = current?.calls.get(message.call);
      if (!call) break;
      current?.calls.delete(message.call);
      if (message.ok) call.resolve(message.value);
      else call.reject(fromWire(message.error));
      break;
    }
  }
});

async function run(message: Extract<ToChild, { t: 'run' }>): Promise<void> {
  const task: Current = { run: message.run, ended: false, controller: new AbortController(), calls: new Map() };
  current = task;
  try {
    const handler = await registry.load(message.name);
    if (!handler) {
      throw new Error(`no handler for task "${message.name}" in ${tasksDir} any more; restore its file, then retry the task`);
    }
    if (!reported.has(handler)) {
      reported.add(handler);
      send({ t: 'loaded', isolation: handler.options.isolation ?? null });
    }
    const value = await handler.run(message.payload as never, context(message, task));
    send({ t: 'done', ok: true, json: toJson(value), rssBytes: process.memoryUsage.rss() });
  } catch (err) {
    send({ t: 'done', ok: false, error: toWire(err instanceof Error ? err : new Error(String(err))), rssBytes: process.memoryUsage.rss() });
  } finally {
    task.ended = true;
    current = null;
    if (terminating) process.exit(0);
  }
}

/** The same ctx as in-process: log and signal are local, every other method of the worker's ctx is a call to it. */
function context(message: Extract<ToChild, { t: 'run' }>, task: Current): TaskContext {
  const ctx: Record<string, unknown> = {
    ...message.fields,
    task: message.task,
    signal: task.controller.signal,
    log: (...args: unknown[]) => send({ t: 'out', level: 'log', text: format(...args) }),
  };
  for (const method of message.methods) {
    ctx[method] = (...args: unknown[]) => {
      // A call after the attempt ended (a timer of a handler that returned) would otherwise reach the
      // worker while this process runs another task. In-process, ctx.add refuses then and the rest
      // (ctx.progress) is ignored: the same here.
      if (task.ended) {
        if (method !== 'add') return Promise.resolve(undefined);
        const refused = Promise.reject(attemptEnded(message.task.id));
        refused.catch(() => {});
        return refused;
      }
      const call = nextCall++;
      const reply = new Promise<unknown>((resolve, reject) => task.calls.set(call, { resolve, reject }));
      // A handler that does not await (ctx.progress, say) must not crash its process on a refusal.
      reply.catch(() => {});
      try {
        process.send?.({ t: 'call', run: task.run, call, method, args } satisfies FromChild);
      } catch (err) {
        task.calls.delete(call);
        return Promise.reject(new Error(`ctx.${method}: its arguments cannot be passed to the worker (${(err as Error).message})`));
      }
      return reply;
    };
  }
  return ctx as unknown as TaskContext;
}

/** The result as JSON text, refused exactly as the worker refuses it in-process. */
function toJson(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    throw new Error(`the handler's return value is not JSON: ${(err as Error).message}`);
  }
  if (json === undefined) throw new Error('the handler returned a value JSON cannot hold (a function or symbol)');
  return json;
}

send({ t: 'ready' });
