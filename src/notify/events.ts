// In-process task events for applications (their own error service, metrics, …): a task completed,
// failed for good, was retried, or was cancelled. A listener that throws (or rejects) is logged and
// changes nothing: not the task, not the worker, not the other listeners.
import type { Logger } from '../model/logger.js';
import type { Json } from '../model/task.js';

/** What every event says about its task. */
export interface TaskEventBase {
  id: number;
  name: string;
  queue: string;
  /** The attempt that ended (1-based). */
  attempt: number;
  maxAttempts: number;
}

export interface TaskEventMap {
  /** The handler returned; its result is recorded. */
  completed: TaskEventBase & { result: Json };
  /** The last attempt failed (or timed out): the task is FAILED. */
  failed: TaskEventBase & { error: string; errorStack: string | null };
  /** An attempt failed with attempts left: the task waits until `retryAt`. */
  retried: TaskEventBase & { error: string; errorStack: string | null; retryAt: Date };
  /** The task ended CANCELLED (while running here, or a waiting task cancelled through this client). */
  cancelled: TaskEventBase & { error: string | null };
}

export type TaskEventName = keyof TaskEventMap;
export type TaskEventListener<K extends TaskEventName> = (event: TaskEventMap[K]) => void | Promise<void>;

type AnyListener = (event: never) => void | Promise<void>;

/** Where a throwing listener is reported when no logger was given: never nowhere. */
const consoleLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message, context) => console.warn(`taskmill: ${message}`, context ?? ''),
  error: (message, context) => console.error(`taskmill: ${message}`, context ?? ''),
};

export class TaskEvents {
  private readonly listeners = new Map<TaskEventName, Set<AnyListener>>();

  constructor(private readonly log: Logger = consoleLogger) {}

  /** Subscribes; returns the unsubscribe. */
  on<K extends TaskEventName>(event: K, listener: TaskEventListener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as AnyListener);
    return () => this.off(event, listener);
  }

  off<K extends TaskEventName>(event: K, listener: TaskEventListener<K>): void {
    this.listeners.get(event)?.delete(listener as AnyListener);
  }

  /** Whether anyone listens (so an emitter can skip building the event). */
  has(event: TaskEventName): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  /** Calls every listener; one that throws or rejects is reported to `log` (the emitter's own by default). */
  emit<K extends TaskEventName>(event: K, payload: TaskEventMap[K], log: Logger = this.log): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        const result = (listener as TaskEventListener<K>)(payload);
        if (result && typeof (result as Promise<void>).then === 'function') {
          (result as Promise<void>).then(undefined, (err: unknown) => report(log, event, payload, err));
        }
      } catch (err) {
        report(log, event, payload, err);
      }
    }
  }

}

function report(log: Logger, event: TaskEventName, payload: TaskEventBase, err: unknown): void {
  log.error(`a "${event}" event listener threw; the task and the other listeners are unaffected`, {
    id: payload.id,
    name: payload.name,
    error: err instanceof Error ? err.message : String(err),
  });
}

/** What a worker knows of an attempt whose outcome it has just written. */
export interface WrittenOutcome {
  task: { id: number; name: string; queue: string; attempts: number; maxAttempts: number };
  completion?: { resultJson: string };
  failure?: { error: string; errorStack: string | null; retryAt: Date | null; cancelled?: boolean };
}

/** Emits the event an outcome written by a worker stands for. */
export function emitOutcome(events: TaskEvents, o: WrittenOutcome, log?: Logger): void {
  const f = o.failure;
  const name: TaskEventName | null = o.completion ? 'completed' : !f ? null : f.cancelled ? 'cancelled' : f.retryAt ? 'retried' : 'failed';
  // The hot path: with nobody listening, nothing is built.
  if (name === null || !events.has(name)) return;
  const base: TaskEventBase = {
    id: o.task.id,
    name: o.task.name,
    queue: o.task.queue,
    attempt: o.task.attempts,
    maxAttempts: o.task.maxAttempts,
  };
  if (o.completion) {
    events.emit('completed', { ...base, result: JSON.parse(o.completion.resultJson) as Json }, log);
    return;
  }
  if (!f) return;
  if (f.cancelled) events.emit('cancelled', { ...base, error: f.error }, log);
  else if (f.retryAt) events.emit('retried', { ...base, error: f.error, errorStack: f.errorStack, retryAt: f.retryAt }, log);
  else events.emit('failed', { ...base, error: f.error, errorStack: f.errorStack }, log);
}
