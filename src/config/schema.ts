// The one config schema: every key, its default, and what is allowed.
import { z } from 'zod';
import { parseDuration } from './duration.js';

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a duration such as "250ms", "90s", "5 minutes" or "1 hour"',
    });
    return z.NEVER;
  }
});

const positiveInt = z.number().int().min(1);

const workerSchema = z
  .object({
    /** Tasks run at once by one worker process. */
    concurrency: positiveInt.max(1000).default(10),
    /** How often an idle worker looks for due tasks besides being woken. */
    pollInterval: duration.default(200),
    /** How long a started task stays reserved without a renewal from its worker. */
    lease: duration.default(30_000),
    /** Queues this worker takes tasks from; all queues when omitted. */
    queues: z.array(z.string().min(1)).min(1).optional(),
    /** How long a graceful stop waits for running tasks. */
    stopTimeout: duration.default(30_000),
    /** How long a forced stop waits for running tasks. */
    forceStopTimeout: duration.default(5_000),
  })
  .strict();

const defaultsSchema = z
  .object({
    maxAttempts: positiveInt.max(1000).default(3),
    backoff: duration.default(5_000),
    backoffMax: duration.default(3_600_000),
    timeout: duration.default(30 * 60_000),
  })
  .strict();

/** The daemon modules that exist without a file; each can be disabled or given options. */
export const BUILT_IN_MODULES = ['TaskWorker', 'Scheduler', 'ConfigSync', 'Maintenance'] as const;

const moduleSchema = z
  .object({
    /** A module file (relative to the config file); required for a module that is not built in. */
    module: z.string().min(1).optional(),
    enabled: z.boolean().default(true),
    /** The module's own options. */
    options: z.record(z.string(), z.unknown()).default({}),
    /** Pause after each preRun → run → postRun loop (overrides the module's own setting). */
    sleep: duration.optional(),
    /** Discard (and re-spawn) the module process after this long. */
    discardAfter: duration.optional(),
    /** Discard (and re-spawn) the module process after this many loops. */
    discardAfterLoops: positiveInt.optional(),
  })
  .strict();

const logSchema = z
  .object({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('error'),
    retentionDays: positiveInt.max(3650).default(7),
  })
  .strict();

export const configSchema = z
  .object({
    database: z
      .string()
      .regex(/^(sqlite:|postgres:\/\/|postgresql:\/\/)/, 'expected "sqlite:PATH" or "postgres://USER@HOST:PORT/DB"')
      .default('sqlite:var/taskmill.db'),
    tasksDir: z.string().min(1).default('tasks'),
    varDir: z.string().min(1).default('var'),
    worker: workerSchema.default(() => workerSchema.parse({})),
    defaults: defaultsSchema.default(() => defaultsSchema.parse({})),
    /**
     * Recurring schedules kept in step with this file. Each entry is checked on its own when the
     * scheduler reconciles (a bad one is reported and skipped; the others still apply).
     */
    schedules: z.array(z.unknown()).default([]),
    /** Daemon modules by name: the built-in ones are registered by default; add your own with "module". */
    daemonModules: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'a module name is a letter then letters, digits, "_" or "-"'), moduleSchema)
      .default({})
      .superRefine((modules, ctx) => {
        for (const [name, m] of Object.entries(modules)) {
          if (!m.module && !(BUILT_IN_MODULES as readonly string[]).includes(name)) {
            ctx.addIssue({
              code: 'custom',
              path: [name, 'module'],
              message: `"${name}" is not a built-in module (${BUILT_IN_MODULES.join(', ')}); give "module": the path of its file`,
            });
          }
        }
      }),
    log: logSchema.default(() => logSchema.parse({})),
  })
  .strict();

/** What a config file may contain (durations as text). */
export type ConfigInput = z.input<typeof configSchema>;

/** A validated config: defaults filled, durations in ms, paths still as written. */
export type ParsedConfig = z.output<typeof configSchema>;

/** A config ready to use: paths made absolute. */
export interface Config extends ParsedConfig {
  /** Directory relative paths were resolved against (the config file's, or the working directory). */
  baseDir: string;
  /** The config file that was read, if any. */
  file: string | null;
}
