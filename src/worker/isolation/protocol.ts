// The messages between the worker and a handler process, over Node's IPC channel (advanced
// serialization, so Dates and nested data arrive as they left).
import type { TaskContext } from '../handlers.js';

/** Which tasks run in child processes: none, reused ones, or a fresh one per task. */
export type IsolationMode = 'none' | 'process' | 'process-per-task';

/** An error as it crosses the channel: enough to rebuild it with its stack and code. */
export interface WireError {
  name: string;
  message: string;
  stack: string | null;
  code: string | null;
}

/** Worker → child. */
export type ToChild =
  | {
      t: 'run';
      /** This run's number in its process: calls are tagged with it, so one from an earlier task (a late timer) is told apart. */
      run: number;
      name: string;
      payload: unknown;
      task: TaskContext['task'];
      /** The parent's ctx methods besides log (add, progress, …): each becomes a call over the channel. */
      methods: string[];
      /** The parent's other plain ctx fields, copied as they are. */
      fields: Record<string, unknown>;
    }
  | { t: 'abort'; reason: WireError }
  | { t: 'reply'; call: number; ok: true; value: unknown }
  | { t: 'reply'; call: number; ok: false; error: WireError };

/** Child → worker. */
export type FromChild =
  | { t: 'ready' }
  /** A handler file (or a new version of it) imported, with its own isolation option: sent once per version. */
  | { t: 'loaded'; isolation: IsolationMode | null }
  | { t: 'out'; level: 'log' | 'info' | 'warn' | 'error' | 'debug'; text: string }
  | { t: 'call'; run: number; call: number; method: string; args: unknown[] }
  /** The attempt ended: `json` is the result as JSON text (undefined for no value), or `error` what it threw. */
  | { t: 'done'; ok: true; json: string | undefined; rssBytes: number }
  | { t: 'done'; ok: false; error: WireError; rssBytes: number };

export function toWire(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = 'code' in e && typeof e.code === 'string' ? e.code : null;
  return { name: e.name, message: e.message, stack: e.stack ?? null, code };
}

export function fromWire(w: WireError): Error {
  const err = new Error(w.message) as Error & { code?: string };
  err.name = w.name;
  err.stack = w.stack ?? `${w.name}: ${w.message}`;
  if (w.code !== null) err.code = w.code;
  return err;
}
