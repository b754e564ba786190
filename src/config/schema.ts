// The one config schema: every key, its default, and what is allowed.
import { z } from 'zod';
import { durationProblem, parseDuration } from './duration.js';
import { DEFAULT_LIMIT_BYTES, MAX_LIMIT_BYTES, formatSize, parseSize } from './size.js';

/**
 * A duration in ms. `min: 0` where zero means "at once" (a stop timeout, a backoff); `timer` where it
 * drives a JS timer directly, which cannot wait longer than MAX_TIMER_MS.
 */
const duration = (bounds: { min?: 0 | 1; timer?: boolean } = {}) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch {
      const negative = typeof value === 'number' ? value < 0 : value.trim().startsWith('-');
      ctx.addIssue({
        code: 'custom',
        message: `${negative ? 'cannot be negative; ' : ''}expected a duration such as "250ms", "90s", "5 minutes" or "1 hour"`,
      });
      return z.NEVER;
    }
    const problem = durationProblem(ms, bounds);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    return ms;
  });

const positiveInt = z.number().int().min(1);

/** A size limit in bytes: a number, or text such as "1 MB". */
const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
  let bytes: number;
  try {
    bytes = parseSize(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a number of bytes, or a size such as "512 KB" or "1 MB"' });
    return z.NEVER;
  }
  if (bytes > MAX_LIMIT_BYTES) {
    ctx.addIssue({ code: 'custom', message: `must be at most ${formatSize(MAX_LIMIT_BYTES)}` });
    return z.NEVER;
  }
  return bytes;
});

const workerSchema = z
  .object({
    /** Tasks run at once by one worker process. */
    concurrency: positiveInt.max(1000).default(10),
    /** How often an idle worker looks for due tasks besides being woken. */
    pollInterval: duration({ timer: true }).default(200),
    /** How long a started task stays reserved without a renewal from its worker. */
    lease: duration({ timer: true }).default(30_000),
    /** Queues this worker takes tasks from; all queues when omitted. */
    queues: z.array(z.string().min(1)).min(1).optional(),
    /** How long a graceful stop waits for running tasks. */
    stopTimeout: duration({ min: 0, timer: true }).default(30_000),
    /** How long a forced stop waits for running tasks. */
    forceStopTimeout: duration({ min: 0, timer: true }).default(5_000),
    // Isolation (src/worker/isolation/): handlers in a pool of child processes.
    /** "process": every task's handler runs in a reused child process; "process-per-task": a fresh one each. */
    isolation: z.enum(['none', 'process', 'process-per-task']).default('none'),
    /** A handler process is replaced after this many tasks. */
    isolationMaxTasks: positiveInt.default(10_000),
    /** Heap limit of a handler process (MB); replaced once its resident memory passes it, killed while running above twice it. */
    isolationMaxRssMb: z.number().int().min(64).max(1_048_576).default(512),
    /** Between SIGTERM and SIGKILL when a handler process is ended (timeout, cancel, stop). */
    isolationKillGrace: duration({ min: 0, timer: true }).default(5_000),
  })
  .strict();

const defaultsSchema = z
  .object({
    maxAttempts: positiveInt.max(1000).default(3),
    backoff: duration({ min: 0 }).default(5_000),
    backoffMax: duration({ min: 0 }).default(3_600_000),
    /** Longer than a timer's range is fine: the worker waits in steps. */
    timeout: duration().default(30 * 60_000),
  })
  .strict();

/**
 * Largest payload (checked at add), result and output (checked by the worker at completion), as
 * bytes of JSON text in UTF-8. Resolved to `payloadBytes`, `resultBytes`, `outputBytes`.
 */
const limitsSchema = z
  .object({
    payload: size.default(DEFAULT_LIMIT_BYTES),
    result: size.default(DEFAULT_LIMIT_BYTES),
    output: size.default(DEFAULT_LIMIT_BYTES),
  })
  .strict()
  .transform((l) => ({ payloadBytes: l.payload, resultBytes: l.result, outputBytes: l.output }));

/** The `options` each built-in module accepts (a custom module's options are its own business). */
export const BUILT_IN_MODULE_OPTIONS = {
  TaskWorker: z
    .object({
      /** Retire after this many tasks (off when omitted). */
      maxTasks: z.number({ error: 'expected a whole number ≥ 1' }).int('expected a whole number ≥ 1').min(1, 'expected a whole number ≥ 1').optional(),
      /** Retire once resident memory passes this many MB; 0 turns it off. */
      maxRssMb: z.number({ error: 'expected a whole number ≥ 0 (0 turns it off)' }).int('expected a whole number ≥ 0 (0 turns it off)').min(0, 'expected a whole number ≥ 0 (0 turns it off)').optional(),
      /** Overrides worker.concurrency for the daemon's worker. */
      concurrency: z.number({ error: 'expected a whole number from 1 to 1000' }).int('expected a whole number from 1 to 1000').min(1, 'expected a whole number from 1 to 1000').max(1000, 'expected a whole number from 1 to 1000').optional(),
      /** Overrides worker.queues for the daemon's worker. */
      queues: z.array(z.string().min(1), { error: 'expected a list of queue names' }).min(1, 'expected at least one queue name').optional(),
    })
    .strict(),
  Scheduler: z.object({}).strict(),
  ConfigSync: z.object({}).strict(),
  // The admin page and HTTP API; configured under "web", not here.
  Web: z.object({}).strict(),
  // Retention (see src/config/retention.ts for the defaults and how the keys combine).
  Maintenance: z
    .object({
      /** COMPLETED and CANCELLED tasks that finished longer ago than this are deleted; false keeps them. */
      completedAfter: z
        .union([z.literal(false), duration()], { error: 'expected a duration such as "7 days", or false to keep them' })
        .optional(),
      /** FAILED tasks that finished longer ago than this are deleted; false keeps them. */
      failedAfter: z
        .union([z.literal(false), duration()], { error: 'expected a duration such as "30 days", or false to keep them' })
        .optional(),
      /** Deprecated: the default of both keys above (as before, one age for every finished task). */
      pruneAfter: z
        .union([z.literal(false), duration()], { error: 'expected a duration such as "7 days", or false to keep finished tasks' })
        .optional(),
    })
    .strict(),
  // Notifications: its settings are the top-level "notify" key; enabled by default when a channel is configured.
  Notifier: z.object({}).strict(),
} as const;

/** The daemon modules that exist without a file; each can be disabled or given options. */
export const BUILT_IN_MODULES = ['TaskWorker', 'Scheduler', 'ConfigSync', 'Maintenance', 'Web', 'Notifier'] as const;
export type BuiltInModule = (typeof BUILT_IN_MODULES)[number];

const moduleSchema = z
  .object({
    /** A module file (relative to the config file); required for a module that is not built in. */
    module: z.string().min(1).optional(),
    enabled: z.boolean().default(true),
    /** The module's own options. */
    options: z.record(z.string(), z.unknown()).default({}),
    /** Pause after each preRun → run → postRun loop (overrides the module's own setting). */
    sleep: duration({ min: 0, timer: true }).optional(),
    /** Discard (and re-spawn) the module process after this long. */
    discardAfter: duration().optional(),
    /** Discard (and re-spawn) the module process after this many loops. */
    discardAfterLoops: positiveInt.optional(),
  })
  .strict();

// --- Web: the admin page and HTTP API (the Web daemon module and `taskmill web`).
/** The port the page and API listen on when none is configured ("TASK" on a phone keypad). */
export const DEFAULT_WEB_PORT = 8275;

const webSchema = z
  .object({
    /** Off turns the Web daemon module off (`taskmill web` still serves). */
    enabled: z.boolean().default(true),
    /** The address the admin page is reached at: notifications link each task to /tasks/:id there. */
    publicUrl: z.string().regex(/^https?:\/\/\S+$/, 'expected the address the admin page is reached at, such as "https://tasks.example.com"').optional(),
    /** Loopback by default; another address without TLS is warned about. */
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 picks a free port (tests). */
    port: z.number().int().min(0).max(65_535).default(DEFAULT_WEB_PORT),
    /** Every principal is a viewer: nothing can be changed through the page or the API. */
    readOnly: z.boolean().default(false),
    /** How long a login lasts. */
    sessionTtl: duration().default(12 * 3_600_000),
    /** PEM files (relative to the config file); both or neither. */
    tls: z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict().optional(),
    /** Who sees the "daemon not running" banner. */
    daemonNotice: z
      .object({ roles: z.array(z.enum(['admin', 'viewer'])).default(['admin']) })
      .strict()
      .default(() => ({ roles: ['admin' as const] })),
  })
  .strict();

const logSchema = z
  .object({
    level: z.enum(['debug', 'info', 'warn', 'error']).default('error'),
    retentionDays: positiveInt.max(3650).default(7),
  })
  .strict();

// --- Notifications (src/notify/): failure e-mail and webhook, storm digests, the daemon-down alert.
// Credentials may stay out of the file: TASKMILL_SMTP_USER / TASKMILL_SMTP_PASSWORD fill in an SMTP URL
// without them, and TASKMILL_WEBHOOK_SECRET a webhook without "secret".
const address = z
  .string()
  .regex(/^[^\s@]+@[^\s@]+$|^[^<>]*<[^\s@<>]+@[^\s@<>]+>$/, 'expected an e-mail address such as "ops@example.com" or "Ops <ops@example.com>"');

/** A task name or a pattern ("billing/*": "*" matches any run of characters). */
const taskPattern = z.string().regex(/^[A-Za-z0-9_/*-]+$/, 'expected a task name or a pattern such as "billing/*"');

const emailSchema = z
  .object({
    to: z.array(address).min(1, 'expected at least one recipient'),
    from: address,
    smtp: z.string().regex(/^smtps?:\/\/[^/\s]+/, 'expected an SMTP URL such as "smtp://user:pass@mail.example.com:587" or "smtps://mail.example.com"'),
    /** Per task name or pattern: other recipients, or false for no mail. The exact name wins, then the longest pattern. */
    tasks: z.record(taskPattern, z.union([z.literal(false), z.array(address).min(1)])).default({}),
  })
  .strict();

const webhookSchema = z
  .object({
    url: z.string().regex(/^https?:\/\/\S+$/, 'expected an http:// or https:// URL'),
    /** Signs each body (HMAC-SHA256); or TASKMILL_WEBHOOK_SECRET. */
    secret: z.string().min(16, 'use a secret of at least 16 characters').optional(),
    /** Per task name or pattern: false sends nothing for it. */
    tasks: z.record(taskPattern, z.literal(false)).default({}),
  })
  .strict();

const notifySchema = z
  .object({
    email: emailSchema.optional(),
    webhook: webhookSchema.optional(),
    /** The storm window: past `maxPerInterval` failures in one, the rest go out as one digest when it ends. */
    interval: duration({ timer: true }).default(5 * 60_000),
    maxPerInterval: z.number().int().min(0).max(10_000).default(5),
    /** A host whose daemon sent no heartbeat for this long is alerted as down (heartbeats come every 10 s). */
    daemonDownAfter: duration()
      .refine((ms) => ms >= 30_000, 'must be at least "30s": daemons send a heartbeat every 10 s, so less would take a running one for dead')
      .default(3 * 60_000),
    /** A failed send is tried again after backoff · 2^(n−1), at most backoffMax, for ever. */
    backoff: duration({ timer: true }).default(10_000),
    backoffMax: duration({ timer: true }).default(10 * 60_000),
    /** How long a deliverer holds a claimed notification; a killed one's are sent by another after it. */
    lease: duration({ timer: true }).default(2 * 60_000),
    /** How often the Notifier module looks for notifications to send (it is also woken by failures here). */
    pollInterval: duration({ timer: true }).default(2_000),
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
          const builtIn = (BUILT_IN_MODULES as readonly string[]).includes(name);
          if (!m.module && !builtIn) {
            ctx.addIssue({
              code: 'custom',
              path: [name, 'module'],
              message: `"${name}" is not a built-in module (${BUILT_IN_MODULES.join(', ')}); give "module": the path of its file`,
            });
          }
          // A built-in module replaced by a file takes that file's options, unchecked.
          if (!builtIn || m.module) continue;
          const checked = BUILT_IN_MODULE_OPTIONS[name as BuiltInModule].safeParse(m.options, { reportInput: true });
          // Validated only: the options stay as written, so listings show them so.
          for (const issue of checked.success ? [] : checked.error.issues) {
            ctx.addIssue({ ...issue, path: [name, 'options', ...issue.path] } as z.core.$ZodRawIssue);
          }
        }
      }),
    /** Size limits; see limitsSchema. */
    limits: limitsSchema.default(() => limitsSchema.parse({})),
    log: logSchema.default(() => logSchema.parse({})),
    /** Notifications; see notifySchema. */
    notify: notifySchema.default(() => notifySchema.parse({})),
    web: webSchema.default(() => webSchema.parse({})),
  })
  .strict();

/** What a config file may contain (durations as text). */
export type ConfigInput = z.input<typeof configSchema>;

/** A validated config: defaults filled, durations in ms, paths still as written. */
export type ParsedConfig = z.output<typeof configSchema>;

/** The options of a built-in module, once validated (durations still as written). */
export type BuiltInModuleOptions<M extends BuiltInModule> = z.input<(typeof BUILT_IN_MODULE_OPTIONS)[M]>;

/** A config ready to use: paths made absolute. */
export interface Config extends ParsedConfig {
  /** Directory relative paths were resolved against (the config file's, or the working directory). */
  baseDir: string;
  /** The config file that was read, if any. */
  file: string | null;
}
