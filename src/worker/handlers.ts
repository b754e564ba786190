// Handlers are plain modules found by name in the tasks folder: tasks/billing/charge.ts is "billing/charge"
// (names match whatever their case: tasks/SendMail.ts is "sendmail").
// A .ts handler runs without a build step: tsx is registered before the first one is imported.
import { type Stats, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { z } from 'zod';
import { parseBoundedDuration, parseDuration } from '../config/duration.js';
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
  /**
   * Reports how far the task has come: a number from 0 to 100, or a small JSON object ({ done, total }),
   * with an optional message. Cheap in a tight loop: the latest value is written at most every 250 ms.
   */
  progress(value: Json, message?: string): void;
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

/**
 * A handler: `Handler` takes any JSON payload; `Handler<typeof schema>` takes the payload its file's
 * `schema` export (any Standard Schema validator: zod, valibot, arktype) gives once it validated it.
 */
export type Handler<S extends StandardSchemaV1 | undefined = undefined> = (
  payload: S extends StandardSchemaV1 ? StandardSchemaV1.InferOutput<S> : Json,
  ctx: TaskContext,
) => unknown;

/** A handler file's default export made by defineTask: the function, carrying its schema, options and example. */
export type DefinedTask<S extends StandardSchemaV1> = Handler<S> & {
  schema: S;
  options?: HandlerOptions;
  example?: StandardSchemaV1.InferInput<S>;
};

/**
 * Defines a task with a typed payload, as the default export of its file:
 * `export default defineTask({ schema: z.object({ to: z.email() }), handler: async (payload, ctx) => … })`.
 * `add` validates every payload against `schema` and refuses a bad one naming the field; the handler
 * gets the validated value, typed.
 */
export function defineTask<S extends StandardSchemaV1>(definition: {
  schema: S;
  handler: Handler<S>;
  options?: HandlerOptions;
  example?: StandardSchemaV1.InferInput<S>;
}): DefinedTask<S> {
  const { schema, handler, options, example } = definition;
  const run: Handler<S> = (payload, ctx) => handler(payload, ctx);
  return Object.assign(run, { schema, options, example });
}

/** What a handler file may export as `options`, per task type. */
export interface HandlerOptions {
  maxAttempts?: number;
  timeout?: string | number;
  queue?: string;
  priority?: number;
  backoff?: string | number;
  backoffMax?: string | number;
  /** Run this type's handler in a child process of the worker's pool (see README, Isolation). */
  isolation?: 'none' | 'process' | 'process-per-task';
}

const optionsSchema = z
  .object({
    maxAttempts: z.number().int().min(1).optional(),
    timeout: z.union([z.string(), z.number()]).optional(),
    queue: z.string().min(1).optional(),
    priority: z.number().int().optional(),
    backoff: z.union([z.string(), z.number()]).optional(),
    backoffMax: z.union([z.string(), z.number()]).optional(),
    isolation: z.enum(['none', 'process', 'process-per-task']).optional(),
  })
  .strict();

export interface ResolvedHandlerOptions {
  maxAttempts?: number;
  timeoutMs?: number;
  queue?: string;
  priority?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  isolation?: 'none' | 'process' | 'process-per-task';
}

export interface LoadedHandler {
  name: string;
  file: string;
  run: Handler;
  options: ResolvedHandlerOptions;
  /** The payload's Standard Schema, when the file exports `schema` (or defineTask carries one). */
  schema: StandardSchemaV1 | null;
  /** An example payload (the `example` export), for the add form. */
  example: Json | null;
}

// In order of preference when one name has several files: a compiled twin (.js) does not clash.
const EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

/** How often a loaded handler's file is checked for a change or deletion. */
const CHECK_FILE_MS = 1_000;

/** Under a burst of unknown names, the folder is re-read at most this often (unless it changed). */
const RESCAN_MS = 250;

/**
 * Checks a task name and returns its one stored form, lower case: "GENERATE_CACHE", as the ANDS task
 * manager writes it, is the task "generate_cache". Refuses names the tasks folder could not hold
 * (and so anything reaching outside it).
 */
export function validateTaskName(name: string): string {
  const canonical = name.toLowerCase();
  if (!TASK_NAME_PATTERN.test(canonical) || canonical.includes('//') || canonical.endsWith('/')) {
    throw new InvalidInputError(
      `invalid task name "${name}": use letters, digits, "_", "-" and "/" for sub-folders, starting with a letter or digit (as in "send-email" or "billing/charge"); case does not matter.`,
    );
  }
  return canonical;
}

interface Folder {
  /** Task name (lower case) → handler file. */
  files: Map<string, string>;
  /** Every directory read → its mtime (-1 when missing): a file added, removed or renamed changes one. */
  dirs: Map<string, number>;
}

function scanFolder(tasksDir: string): Folder {
  const files = new Map<string, { file: string; rank: number }>();
  const dirs = new Map<string, number>();
  const walk = (dir: string, prefix: string) => {
    let entries: string[];
    try {
      dirs.set(dir, statSync(dir).mtimeMs);
      entries = readdirSync(dir).sort();
    } catch {
      dirs.set(dir, -1);
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
      const rank = EXTENSIONS.findIndex((e) => entry.endsWith(e));
      if (rank < 0 || entry.endsWith('.d.ts') || /\.(test|spec)\.[mc]?[jt]s$/.test(entry)) continue;
      const name = `${prefix}${entry.slice(0, -(EXTENSIONS[rank] as string).length)}`.toLowerCase();
      if (!TASK_NAME_PATTERN.test(name)) continue;
      // .ts before .mts, .js, .mjs; for the same extension, the first in sorted order (so of
      // SendMail.ts and sendmail.ts, SendMail.ts: upper case sorts first).
      const seen = files.get(name);
      if (!seen || rank < seen.rank) files.set(name, { file: full, rank });
    }
  };
  walk(tasksDir, '');
  return { files: new Map([...files].map(([name, f]) => [name, f.file])), dirs };
}

/** Maps task names (lower case) to handler files under `tasksDir`; skips files and folders starting with "_". */
export function discoverHandlers(tasksDir: string): Map<string, string> {
  return scanFolder(tasksDir).files;
}

type HandlerModule = { default?: unknown; options?: unknown; schema?: unknown; example?: unknown };

/**
 * Imported handler files by path + mtime + size, shared by every registry in the process: an
 * unchanged file is never imported twice (each import of TypeScript costs a module and a loader that
 * are never freed). A file that failed keeps failing the same way until it changes.
 */
const imported = new Map<string, Promise<HandlerModule>>();

/**
 * Imports a handler file. TypeScript goes through tsx's scoped import, which works whatever the
 * nearest package.json says; a file compiled as CommonJS arrives wrapped once more in `default`.
 * The version in the query string makes Node import changed code instead of its cached module.
 */
function importModule(file: string, version: string): Promise<HandlerModule> {
  const key = `${file}\0${version}`;
  let pending = imported.get(key);
  if (!pending) {
    const url = pathToFileURL(file);
    url.search = `?v=${version}`;
    pending = (async () => {
      let mod: HandlerModule;
      if (/\.m?ts$/.test(file)) {
        const { tsImport } = await import('tsx/esm/api');
        mod = (await tsImport(url.href, import.meta.url)) as HandlerModule;
      } else {
        mod = (await import(url.href)) as HandlerModule;
      }
      const inner = mod.default as HandlerModule | undefined;
      if (inner && typeof inner === 'object' && typeof inner.default === 'function') return inner;
      return mod;
    })();
    imported.set(key, pending);
  }
  return pending;
}

interface Current {
  file: string;
  version: string;
  checkedAt: number;
  handler: Promise<LoadedHandler>;
}

/**
 * Loads handlers by name (case-insensitive). The folder is re-read when a name is not known, at
 * most every RESCAN_MS unless one of its directories changed; a loaded handler's file is checked
 * every CHECK_FILE_MS, and re-imported only when it changed.
 */
export class HandlerRegistry {
  private folder: Folder | null = null;
  private scannedAt = 0;
  private readonly current = new Map<string, Current>();

  constructor(
    readonly tasksDir: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Known task names, sorted. */
  names(): string[] {
    return [...this.index().keys()].sort();
  }

  /** Whether a handler file provides `name`; an unknown name re-reads the folder (see RESCAN_MS). */
  has(name: string): boolean {
    return this.find(name.toLowerCase()) !== undefined;
  }

  /** Forgets the folder's index, so the next lookup reads it again (loaded code is kept until its file changes). */
  reset(): void {
    this.folder = null;
  }

  /** The handler for `name`, or null when no file provides it any more. Throws HandlerError for a broken file. */
  async load(name: string): Promise<LoadedHandler | null> {
    const key = name.toLowerCase();
    const now = this.now();
    const cur = this.current.get(key);
    // Checked at most every CHECK_FILE_MS per task type: a stat per task costs 4 % of a drain.
    if (cur && cur.checkedAt + CHECK_FILE_MS > now) return cur.handler;
    let file = this.find(key);
    let stat = file === undefined ? undefined : statOf(file);
    if (file !== undefined && !stat) {
      // Deleted since the folder was read: read it again (another extension may remain).
      this.reset();
      file = this.find(key);
      stat = file === undefined ? undefined : statOf(file);
    }
    if (file === undefined || !stat) {
      this.current.delete(key);
      return null;
    }
    const version = `${stat.mtimeMs}-${stat.size}`;
    if (cur && cur.file === file && cur.version === version) {
      cur.checkedAt = now;
      return cur.handler;
    }
    const handler = this.importHandler(key, file, version);
    // Its first use checks the file again (an add loads it; the file may be gone when a worker runs it).
    this.current.set(key, { file, version, checkedAt: -Infinity, handler });
    return handler;
  }

  private find(name: string): string | undefined {
    const known = this.index().get(name);
    if (known !== undefined) return known;
    if (this.now() - this.scannedAt < RESCAN_MS && !this.folderChanged()) return undefined;
    // A file added since the folder was last read.
    this.reset();
    return this.index().get(name);
  }

  private index(): Map<string, string> {
    if (!this.folder) {
      this.folder = scanFolder(this.tasksDir);
      this.scannedAt = this.now();
    }
    return this.folder.files;
  }

  /** A stat per directory (usually one): far cheaper than reading the folder. */
  private folderChanged(): boolean {
    for (const [dir, mtime] of this.folder?.dirs ?? []) {
      if ((statOf(dir)?.mtimeMs ?? -1) !== mtime) return true;
    }
    return false;
  }

  private async importHandler(name: string, file: string, version: string): Promise<LoadedHandler> {
    let mod: HandlerModule;
    try {
      mod = await importModule(file, version);
    } catch (err) {
      throw new HandlerError(`cannot load the handler of "${name}" from ${file}: ${(err as Error).message}`);
    }
    if (typeof mod.default !== 'function') {
      throw new HandlerError(
        `${file} has no default export function; write "export default async function (payload, ctx) { … }".`,
      );
    }
    // defineTask carries schema, options and example on the function; plain exports win.
    const carried = mod.default as { schema?: unknown; options?: unknown; example?: unknown };
    return {
      name,
      file,
      run: mod.default as Handler,
      options: resolveOptions(mod.options ?? carried.options, file),
      schema: resolveSchema(mod.schema ?? carried.schema, file),
      example: resolveExample(mod.example ?? carried.example, file),
    };
  }
}

function statOf(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}

function resolveSchema(raw: unknown, file: string): StandardSchemaV1 | null {
  if (raw === undefined || raw === null) return null;
  const std = (raw as { '~standard'?: { version?: unknown; validate?: unknown } })['~standard'];
  if (typeof std !== 'object' || std === null || std.version !== 1 || typeof std.validate !== 'function') {
    throw new HandlerError(
      `the "schema" export of ${file} is not a Standard Schema validator; export a schema of zod (3.24 or later), ` +
        'valibot or arktype, or remove the export.',
    );
  }
  return raw as StandardSchemaV1;
}

function resolveExample(raw: unknown, file: string): Json | null {
  if (raw === undefined || raw === null) return null;
  try {
    const text = JSON.stringify(raw);
    if (text === undefined) throw new Error('not JSON');
    return JSON.parse(text) as Json;
  } catch {
    throw new HandlerError(`the "example" export of ${file} is not JSON; export a plain object.`);
  }
}

/**
 * Validates a payload against a handler's schema; refuses it naming each field path and its issue.
 * Returns the validated value (defaults filled in) that the task stores.
 */
export async function validatePayload(handler: LoadedHandler, payload: unknown): Promise<unknown> {
  if (!handler.schema) return payload;
  let result = handler.schema['~standard'].validate(payload);
  if (result instanceof Promise) result = await result;
  if (!result.issues) return result.value;
  const problems = result.issues.slice(0, 10).map((issue) => {
    const at = (issue.path ?? [])
      .map((seg) => (typeof seg === 'object' && seg !== null ? seg.key : seg))
      .map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`))
      .join('')
      .replace(/^\./, '');
    return `${at === '' ? 'payload' : `"${at}"`}: ${issue.message}`;
  });
  throw new InvalidInputError(
    `invalid payload for "${handler.name}": ${problems.join('; ')}${result.issues.length > 10 ? '; …' : ''}. ` +
      `The schema of ${path.basename(handler.file)} says what it takes.`,
  );
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
      timeoutMs: o.timeout === undefined ? undefined : parseBoundedDuration(o.timeout, 'timeout'),
      queue: o.queue,
      priority: o.priority,
      backoffBaseMs: o.backoff === undefined ? undefined : parseDuration(o.backoff, 'backoff'),
      backoffMaxMs: o.backoffMax === undefined ? undefined : parseDuration(o.backoffMax, 'backoffMax'),
      isolation: o.isolation,
    };
  } catch (err) {
    throw new HandlerError(`invalid "options" export in ${file}: ${(err as Error).message}`);
  }
}

/** The fields of a task a handler sees in ctx.task. */
export function contextTask(
  task: Pick<Task, 'id' | 'name' | 'attempts' | 'maxAttempts' | 'queue' | 'note' | 'scheduleName' | 'scheduledFor'>,
): TaskContext['task'] {
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
