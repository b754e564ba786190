// Handlers are plain modules found by name in the tasks folder: tasks/billing/charge.ts is "billing/charge".
// A .ts handler runs without a build step: tsx is registered before the first one is imported.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { parseDuration } from '../config/duration.js';
import { HandlerError, InvalidInputError } from '../model/errors.js';
import type { Json, Task } from '../model/task.js';
import { TASK_NAME_PATTERN } from '../model/task.js';

export interface TaskContext {
  task: {
    id: number;
    name: string;
    attempt: number;
    maxAttempts: number;
    queue: string;
    note: string | null;
    /** The schedule that created this task, and the occurrence it serves (even when it runs late). */
    scheduleName: string | null;
    scheduledFor: Date | null;
  };
  /** Fires when the task times out, is cancelled, or the worker has to stop. */
  signal: AbortSignal;
  /** Stores a line with this task's output (console output inside the handler is stored too). */
  log(...args: unknown[]): void;
  /** Adds another task (a follow-up, or the next run of a self-rescheduling task); returns its id. */
  add(name: string, payload?: unknown, options?: FollowUpOptions): Promise<number>;
}

/** Options of a task added by a handler (ctx.add) or an application (the client's add extends them). */
export interface FollowUpOptions {
  /** Not started before this time. */
  runAt?: Date | string;
  /** Not started before now + this ("90s", "5 minutes", "1 hour", or ms). */
  delay?: string | number;
  /** Ids of tasks that must be COMPLETED first. */
  after?: number | readonly number[];
  priority?: number;
  queue?: string;
  uniqueKey?: string;
  maxAttempts?: number;
  timeout?: string | number;
  /** A free-text message stored with the task. */
  note?: string;
}

export type Handler = (payload: Json, ctx: TaskContext) => unknown;

/** What a handler file may export as `options`, per task type. */
export interface HandlerOptions {
  maxAttempts?: number;
  timeout?: string | number;
  queue?: string;
  priority?: number;
  backoff?: string | number;
  backoffMax?: string | number;
}

const optionsSchema = z
  .object({
    maxAttempts: z.number().int().min(1).optional(),
    timeout: z.union([z.string(), z.number()]).optional(),
    queue: z.string().min(1).optional(),
    priority: z.number().int().optional(),
    backoff: z.union([z.string(), z.number()]).optional(),
    backoffMax: z.union([z.string(), z.number()]).optional(),
  })
  .strict();

export interface ResolvedHandlerOptions {
  maxAttempts?: number;
  timeoutMs?: number;
  queue?: string;
  priority?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export interface LoadedHandler {
  name: string;
  file: string;
  run: Handler;
  options: ResolvedHandlerOptions;
}

const EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

/** How often a loaded handler's file is checked to still exist. */
const CHECK_FILE_MS = 1_000;

/** Refuses names the tasks folder could not hold (and so anything reaching outside it). */
export function validateTaskName(name: string): void {
  if (!TASK_NAME_PATTERN.test(name) || name.includes('//') || name.endsWith('/')) {
    throw new InvalidInputError(
      `invalid task name "${name}": use lower-case letters, digits, "_", "-" and "/" for sub-folders, starting with a letter or digit (as in "send-email" or "billing/charge").`,
    );
  }
}

/** Maps task names to handler files under `tasksDir`; skips files and folders starting with "_". */
export function discoverHandlers(tasksDir: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string, prefix: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.startsWith('_') || entry.startsWith('.')) continue;
      const full = path.join(dir, entry);
      let isDir: boolean;
      try {
        isDir = statSync(full).isDirectory();
      } catch {
        continue;
      }
      if (isDir) {
        walk(full, `${prefix}${entry}/`);
        continue;
      }
      const ext = EXTENSIONS.find((e) => entry.endsWith(e));
      if (!ext || entry.endsWith('.d.ts') || /\.(test|spec)\.[mc]?[jt]s$/.test(entry)) continue;
      const name = `${prefix}${entry.slice(0, -ext.length)}`;
      // The first extension found wins (.ts before .js), so a compiled twin does not clash.
      if (TASK_NAME_PATTERN.test(name) && !found.has(name)) found.set(name, full);
    }
  };
  walk(tasksDir, '');
  return found;
}

type HandlerModule = { default?: unknown; options?: unknown };

/**
 * Imports a handler file. TypeScript goes through tsx's scoped import, which works whatever the
 * nearest package.json says; a file compiled as CommonJS arrives wrapped once more in `default`.
 */
async function importModule(url: URL): Promise<HandlerModule> {
  let mod: HandlerModule;
  if (/\.m?ts$/.test(url.pathname)) {
    const { tsImport } = await import('tsx/esm/api');
    mod = (await tsImport(url.href, import.meta.url)) as HandlerModule;
  } else {
    mod = (await import(url.href)) as HandlerModule;
  }
  const inner = mod.default as HandlerModule | undefined;
  if (inner && typeof inner === 'object' && typeof inner.default === 'function') return inner;
  return mod;
}

/** Loads handlers by name, caching each module until `reset()` (which picks up changed code). */
export class HandlerRegistry {
  private files: Map<string, string> | null = null;
  private readonly loaded = new Map<string, Promise<LoadedHandler>>();
  private generation = 0;
  private readonly checkedAt = new Map<string, number>();

  constructor(readonly tasksDir: string) {}

  /** Known task names, sorted. */
  names(): string[] {
    return [...this.index().keys()].sort();
  }

  has(name: string): boolean {
    return this.index().has(name);
  }

  /** Forgets files and modules, so the next load reads the folder and the code again. */
  reset(): void {
    this.files = null;
    this.loaded.clear();
    this.checkedAt.clear();
    this.generation++;
  }

  /** The handler for `name`, or null when no file provides it any more. Throws HandlerError for a broken file. */
  async load(name: string): Promise<LoadedHandler | null> {
    let pending = this.loaded.get(name);
    const cachedFile = pending ? this.files?.get(name) : undefined;
    // Checked at most every CHECK_FILE_MS per task type: a stat per task costs 4 % of a drain.
    const now = Date.now();
    const due = pending !== undefined && (this.checkedAt.get(name) ?? 0) + CHECK_FILE_MS <= now;
    if (due) this.checkedAt.set(name, now);
    if (pending && cachedFile && due && !existsSync(cachedFile)) {
      // The file was deleted since it was loaded: the task type is gone, whatever is cached.
      this.reset();
      pending = undefined;
    }
    if (!pending) {
      let file = this.index().get(name);
      if (!file) {
        // A file added since the folder was last read.
        this.files = null;
        file = this.index().get(name);
        if (!file) return null;
      }
      pending = this.importHandler(name, file);
      this.loaded.set(name, pending);
      pending.catch(() => this.loaded.delete(name));
    }
    return pending;
  }

  private index(): Map<string, string> {
    this.files ??= discoverHandlers(this.tasksDir);
    return this.files;
  }

  private async importHandler(name: string, file: string): Promise<LoadedHandler> {
    const url = pathToFileURL(file);
    // A new query string per generation makes Node import changed code instead of its cached module.
    if (this.generation > 0) url.search = `?v=${this.generation}-${statSync(file).mtimeMs}`;
    let mod: HandlerModule;
    try {
      mod = await importModule(url);
    } catch (err) {
      throw new HandlerError(`cannot load the handler of "${name}" from ${file}: ${(err as Error).message}`);
    }
    if (typeof mod.default !== 'function') {
      throw new HandlerError(
        `${file} has no default export function; write "export default async function (payload, ctx) { … }".`,
      );
    }
    return { name, file, run: mod.default as Handler, options: resolveOptions(mod.options, file) };
  }
}

function resolveOptions(raw: unknown, file: string): ResolvedHandlerOptions {
  if (raw === undefined) return {};
  const parsed = optionsSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
    throw new HandlerError(`invalid "options" export in ${file}: ${problems}.`);
  }
  const o = parsed.data;
  try {
    return {
      maxAttempts: o.maxAttempts,
      timeoutMs: o.timeout === undefined ? undefined : parseDuration(o.timeout, 'timeout'),
      queue: o.queue,
      priority: o.priority,
      backoffBaseMs: o.backoff === undefined ? undefined : parseDuration(o.backoff, 'backoff'),
      backoffMaxMs: o.backoffMax === undefined ? undefined : parseDuration(o.backoffMax, 'backoffMax'),
    };
  } catch (err) {
    throw new HandlerError(`invalid "options" export in ${file}: ${(err as Error).message}`);
  }
}

/** The fields of a task a handler sees in ctx.task. */
export function contextTask(task: Task): TaskContext['task'] {
  return {
    id: task.id,
    name: task.name,
    attempt: task.attempts,
    maxAttempts: task.maxAttempts,
    queue: task.queue,
    note: task.note,
    scheduleName: task.scheduleName,
    scheduledFor: task.scheduledFor,
  };
}
