// A module process: loads one daemon module and runs preRun → run → postRun until it is discarded
// or stopped. Started by the main daemon (child_process.fork) with the module's name as argument
// and the rest in an `init` message; it re-reads the configuration, so a re-spawned module sees the
// current one.
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Taskmill } from '../client/taskmill.js';
import { openModuleLog } from './logging.js';
import { type DaemonModule, loadModule, type ModuleContext, type ModuleSummary, type StepResult } from './module.js';
import { daemonPaths, type ModuleInit, type ModuleState, type ToModule, type ToSupervisor } from './protocol.js';

const DB_RETRY_MS = 10_000;

// The main daemon may be gone (or going): a failed send must not become an uncaught error.
const send = (m: ToSupervisor) => {
  if (process.connected) process.send?.(m, undefined, undefined, () => undefined);
};

/** Messages that come before the module is loaded; `init` is the first the main daemon sends. */
let onMessage: ((m: ToModule) => void) | null = null;
process.on('message', (m: ToModule) => onMessage?.(m));

/** Says hello and waits for `init`; a stop (or the main daemon leaving) before it ends the process. */
function receiveInit(): Promise<ModuleInit> {
  return new Promise((resolve) => {
    const gone = () => process.exit(0);
    onMessage = (m) => {
      if (m.t === 'init') {
        process.off('disconnect', gone);
        resolve(m);
      } else if (m.t === 'stop') {
        process.exit(0);
      }
    };
    process.once('disconnect', gone);
    send({ t: 'hello' });
  });
}

async function main(): Promise<void> {
  const name = process.argv[2] ?? '';
  const init = await receiveInit();
  // Messages that arrive while the module loads are handled once it is loaded.
  const queued: ToModule[] = [];
  onMessage = (m) => queued.push(m);
  const stop = new AbortController();
  // The main daemon going away (even kill -9) must not leave this process behind.
  process.on('disconnect', () => {
    if (!stop.signal.aborted) stop.abort();
  });
  // Whatever this process starts inherits its environment; the URL came over IPC instead.
  delete process.env.TASKMILL_DATABASE;
  const debug = init.debug;
  const configEnv = { ...process.env, TASKMILL_DATABASE: init.database ?? undefined };
  // The file as it is now; if it is broken, the main daemon's last good configuration.
  let config: Config;
  let configProblem: string | null = null;
  try {
    config = loadConfig({ file: init.configFile ?? undefined, env: configEnv });
  } catch (err) {
    config = init.goodConfig;
    configProblem = (err as Error).message;
  }
  const paths = daemonPaths(config.varDir);
  const log = openModuleLog({
    dir: paths.logDir,
    name,
    level: debug ? 'debug' : config.log.level,
    retentionDays: config.log.retentionDays,
    console: debug && init.foreground,
  });
  if (configProblem) log.logger.error('the config file is invalid; running on the last good configuration', { error: configProblem });
  let stopForce = false;
  let millPromise: Promise<Taskmill> | null = null;
  const ctx: ModuleContext = {
    name,
    options: {},
    config,
    log: log.logger,
    debug,
    mill: () => (millPromise ??= Taskmill.open({ file: config.file ?? undefined, env: configEnv, logger: log.logger })),
    signal: stop.signal,
    requestReload: () => send({ t: 'reload' }),
    reportWeb: (url, loginLink) => send({ t: 'web', url, loginLink }),
  };

  let loops = 0;
  let lastError: string | null = null;
  let state = 'starting' as ModuleState;
  const report = (s: ModuleState) => {
    state = s;
    send({ t: 'state', state, loops, lastError });
  };
  const finish = async (code: number) => {
    try {
      if (millPromise) await (await millPromise).close();
    } catch {
      // closing a client whose database is gone: nothing left to release
    }
    log.close();
    process.exit(code);
  };

  let mod: DaemonModule;
  let settings: Awaited<ReturnType<typeof loadModule>>['settings'];
  try {
    const loaded = await loadModule(config, name);
    ctx.options = (config.daemonModules[name]?.options ?? {}) as Record<string, unknown>;
    settings = loaded.settings;
    mod = await loaded.create(ctx);
  } catch (err) {
    log.logger.error('the module could not be loaded', { error: (err as Error).message });
    send({ t: 'state', state: 'starting', loops: 0, lastError: (err as Error).message });
    return finish(1);
  }

  onMessage = (m: ToModule) => {
    if (m.t === 'stop') {
      stopForce ||= m.force;
      if (!stop.signal.aborted) stop.abort();
      if (m.force) void stopModule(true);
    } else if (m.t === 'summary') {
      void summarize(mod).then((summary) => send({ t: 'summary', id: m.id, summary }));
    }
  };
  for (const m of queued.splice(0)) onMessage(m);
  process.on('SIGTERM', () => stop.abort());
  process.on('SIGINT', () => undefined);

  let stopping: Promise<void> | null = null;
  let forced = false;
  const stopModule = (force: boolean) => {
    const c = config.worker;
    if (stopping) {
      // A forced stop during a graceful one shortens its wait (the worker's second stop does).
      if (force && !forced) {
        forced = true;
        void Promise.resolve(mod.stop?.({ force: true, timeoutMs: c.forceStopTimeout })).catch(() => undefined);
      }
      return stopping;
    }
    forced = force;
    stopping = (async () => {
      report('stopping');
      await mod.stop?.({ force, timeoutMs: force ? c.forceStopTimeout : c.stopTimeout });
    })();
    return stopping;
  };

  const started = Date.now();
  const step = async (what: 'preRun' | 'run' | 'postRun', fn: (() => StepResult) | undefined): Promise<boolean> => {
    if (!fn) return true;
    try {
      return (await fn.call(mod)) !== false;
    } catch (err) {
      lastError = `${what}: ${(err as Error).message}`;
      log.logger.error(`${what} threw; discarding the module`, { error: (err as Error).message, stack: (err as Error).stack });
      return false;
    }
  };
  const defaultPreRun = async () => {
    // The database may be down (or not up yet): wait for it instead of failing.
    for (;;) {
      try {
        await (await ctx.mill()).store.ping();
        if (state !== 'running') report('running');
        return true;
      } catch (err) {
        // A client that could not open is dropped, for a fresh try; an open one is kept: its pool
        // reconnects by itself, and the module's worker or scheduler goes on using it.
        if (millPromise && (await millPromise.then(() => false, () => true))) millPromise = null;
        if (state !== 'waiting for the database') {
          log.logger.error('the database does not answer; waiting for it', { error: (err as Error).message });
          report('waiting for the database');
        }
        if (await sleep(DB_RETRY_MS, stop.signal)) return true;
      }
    }
  };

  let discardReason: string | null = null;
  while (!stop.signal.aborted) {
    const pre = mod.preRun ? await step('preRun', mod.preRun) : await defaultPreRun();
    if (stop.signal.aborted) break;
    if (!pre) {
      discardReason = 'preRun returned false';
      break;
    }
    if (state !== 'running') report('running');
    if (!(await step('run', mod.run))) {
      discardReason = lastError ?? 'run returned false';
      break;
    }
    if (!(await step('postRun', mod.postRun))) {
      discardReason = lastError ?? 'postRun returned false';
      break;
    }
    loops++;
    send({ t: 'state', state, loops, lastError });
    if (settings.discardAfterLoops !== null && loops >= settings.discardAfterLoops) {
      discardReason = `discarded after ${loops} loops`;
      break;
    }
    if (settings.discardAfterMs !== null && Date.now() - started >= settings.discardAfterMs) {
      discardReason = `discarded after ${Math.round((Date.now() - started) / 1000)} s`;
      break;
    }
    await sleep(settings.sleepMs, stop.signal);
  }
  await stopModule(stopForce);
  if (discardReason !== null && !stop.signal.aborted) {
    log.logger.info('discarding the module; the main daemon starts a fresh one', { reason: discardReason });
    send({ t: 'discard', reason: discardReason });
  }
  return finish(0);
}

async function summarize(mod: DaemonModule): Promise<ModuleSummary[]> {
  if (!mod.summary) return [];
  const s = await mod.summary();
  return Array.isArray(s) ? s : [s];
}

/** Sleeps; resolves true if aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

await main();
