// The daemon module API: what a module file exports, what it is given, and how it is found.
// Each module runs in its own process: preRun → run → postRun, again and again, until one of them
// returns false (or throws), which discards the process; the main daemon then starts a fresh one.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseDuration } from '../config/duration.js';
import { BUILT_IN_MODULES, type Config } from '../config/schema.js';
import { HandlerError } from '../model/errors.js';
import type { Logger } from '../model/logger.js';
import type { Taskmill } from '../client/taskmill.js';
import { notifyChannels } from '../notify/channels.js';

export type StepResult = boolean | void | Promise<boolean | void>;

/** A column of a summary table, as Maint::Daemon::Summary expects. */
export interface SummaryColumn {
  name: string;
  displayName: string;
  size: number;
}

export interface ModuleSummary {
  header: string;
  columns: SummaryColumn[];
  rows: Record<string, string | number | null>[];
  /** Shown when there are no rows. */
  noDataMessage: string;
}

export interface DaemonModule {
  /** Before each run; false discards the module. Default: wait until the database answers. */
  preRun?(): StepResult;
  run(): StepResult;
  /** After each run; false discards the module. */
  postRun?(): StepResult;
  summary?(): ModuleSummary | ModuleSummary[] | Promise<ModuleSummary | ModuleSummary[]>;
  /**
   * The daemon is stopping (or replacing) this module: finish or hand back work. A forced stop
   * during a graceful one calls it again with `force: true` and a shorter timeout.
   */
  stop?(options: { force: boolean; timeoutMs: number }): Promise<void> | void;
}

export interface ModuleSettings {
  /** Pause after each loop. */
  sleep?: string | number;
  /** Discard after this long. */
  discardAfter?: string | number;
  /** Discard after this many loops. */
  discardAfterLoops?: number;
}

export interface ModuleContext {
  name: string;
  options: Record<string, unknown>;
  config: Config;
  log: Logger;
  debug: boolean;
  /** The client on the configured database, opened on first use and shared by the module. */
  mill(): Promise<Taskmill>;
  /** Aborts when the daemon stops this module. */
  signal: AbortSignal;
  /** Asks the main daemon to restart every module with the configuration as it is now on disk. */
  requestReload(): void;
  /**
   * Web module: tells the main daemon where the page is served (null: not serving) and the one-time
   * login link, if one was made; the main daemon shows them in `taskmill status`, its log and console.
   */
  reportWeb?(url: string | null, loginLink: string | null): void;
}

export type ModuleFactory = (ctx: ModuleContext) => DaemonModule | Promise<DaemonModule>;
export type ModuleClass = new (ctx: ModuleContext) => DaemonModule;

export interface LoadedModule {
  create: (ctx: ModuleContext) => Promise<DaemonModule>;
  settings: { sleepMs: number; discardAfterMs: number | null; discardAfterLoops: number | null };
}

/** The configured modules: the built-in ones (unless configured otherwise) and the custom ones. */
export function configuredModules(config: Config): { name: string; module: string | null; enabled: boolean; options: Record<string, unknown> }[] {
  const names = [...BUILT_IN_MODULES, ...Object.keys(config.daemonModules).filter((n) => !(BUILT_IN_MODULES as readonly string[]).includes(n))];
  return names.map((name) => {
    const c = config.daemonModules[name];
    return {
      name,
      module: c?.module ? path.resolve(config.baseDir, c.module) : null,
      // Web also needs web.enabled (true by default): `"web": { "enabled": false }` turns the page off.
      // Notifier runs by default only where there is a channel to send to.
      enabled:
        (c?.enabled ?? (name === 'Notifier' ? notifyChannels(config).length > 0 : true)) && (name !== 'Web' || config.web.enabled),
      options: c?.options ?? {},
    };
  });
}

/** Loads a module by name: built in, or from its configured file (TypeScript works without a build). */
export async function loadModule(config: Config, name: string): Promise<LoadedModule> {
  const entry = configuredModules(config).find((m) => m.name === name);
  if (!entry) throw new HandlerError(`no daemon module named "${name}"; see "taskmill list".`);
  let exported: { default?: unknown; settings?: ModuleSettings };
  if (entry.module) {
    const url = pathToFileURL(entry.module).href;
    try {
      if (/\.m?ts$/.test(entry.module)) {
        const { tsImport } = await import('tsx/esm/api');
        exported = (await tsImport(url, import.meta.url)) as typeof exported;
        const inner = exported.default as typeof exported | undefined;
        if (inner && typeof inner === 'object' && 'default' in inner) exported = inner;
      } else {
        exported = (await import(url)) as typeof exported;
      }
    } catch (err) {
      throw new HandlerError(`cannot load daemon module "${name}" from ${entry.module}: ${(err as Error).message}`);
    }
  } else {
    exported = (await import(`./modules/${builtInFile(name)}.js`)) as typeof exported;
  }
  const impl = exported.default;
  if (impl === undefined || impl === null || (typeof impl !== 'function' && typeof impl !== 'object')) {
    throw new HandlerError(
      `daemon module "${name}" (${entry.module ?? 'built in'}) must export default a class, a factory function or an object with run().`,
    );
  }
  const fromConfig = config.daemonModules[name];
  const own = exported.settings ?? (impl as { settings?: ModuleSettings }).settings ?? {};
  const ms = (v: string | number | undefined, what: string) => (v === undefined ? null : parseDuration(v, what));
  return {
    create: async (ctx) => instantiate(impl, ctx, name),
    settings: {
      sleepMs: fromConfig?.sleep ?? ms(own.sleep, 'sleep') ?? 1_000,
      discardAfterMs: fromConfig?.discardAfter ?? ms(own.discardAfter, 'discardAfter'),
      discardAfterLoops: fromConfig?.discardAfterLoops ?? own.discardAfterLoops ?? null,
    },
  };
}

async function instantiate(impl: unknown, ctx: ModuleContext, name: string): Promise<DaemonModule> {
  let mod: unknown;
  if (typeof impl === 'function') {
    const fn = impl as { prototype?: { run?: unknown } };
    mod = fn.prototype && typeof fn.prototype.run === 'function' ? new (impl as ModuleClass)(ctx) : await (impl as ModuleFactory)(ctx);
  } else {
    mod = impl;
  }
  if (!mod || typeof (mod as DaemonModule).run !== 'function') {
    throw new HandlerError(`daemon module "${name}" has no run() method.`);
  }
  return mod as DaemonModule;
}

function builtInFile(name: string): string {
  return (
    { TaskWorker: 'task-worker', Scheduler: 'scheduler', ConfigSync: 'config-sync', Maintenance: 'maintenance', Web: 'web', Notifier: 'notifier' }[
      name
    ] ?? name
  );
}
