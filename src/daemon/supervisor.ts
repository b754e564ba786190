// The main daemon: starts every enabled module in its own process and keeps it alive. A discarded
// module is re-spawned at once; a crashed one after a growing delay (1 s doubling to 30 s). It
// answers on the control socket, writes a heartbeat per host into the database, copies what the
// modules print into daemon.out, and restarts the modules when ConfigSync says the config changed.
import { type ChildProcess, fork } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../model/logger.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { type ControlCommand, type ControlServer, type DaemonIdentity, listenControl, makePrivateDir } from './control-socket.js';
import { openModuleLog, openOutFile, type OutFile } from './logging.js';
import { configuredModules, type ModuleSummary } from './module.js';
import { alreadyRunning, lookup, removePidFile, resolvedVarDir, withStartLock, writePidFile } from './pid-file.js';
import { daemonPaths, type ModuleInit, type ModuleState, type ToModule, type ToSupervisor } from './protocol.js';

export interface ModuleStatus {
  name: string;
  pid: number | null;
  state: ModuleState | 'restarting' | 'crashed';
  loops: number;
  restarts: number;
  lastError: string | null;
  startedAt: string | null;
}

export interface DaemonStatus {
  pid: number;
  host: string;
  startedAt: string;
  configFile: string | null;
  modules: ModuleStatus[];
  /** Where the Web module serves the page and API, while it does. */
  web?: string | null;
}

interface Slot {
  status: ModuleStatus;
  child: ChildProcess | null;
  discarded: boolean;
  crashes: number;
  spawnedAt: number;
  timer: NodeJS.Timeout | null;
  exited: Promise<void>;
}

const RUNNER = fileURLToPath(new URL('./runner.js', import.meta.url));
const HEARTBEAT_MS = 10_000;
const MAX_RESPAWN_DELAY_MS = 30_000;
/** A module that ran this long before crashing starts again from the shortest delay. */
const HEALTHY_AFTER_MS = 60_000;

export interface SupervisorOptions {
  configFile: string | null;
  debug: boolean;
  foreground: boolean;
  /** Prints a line for the operator (the foreground console): the web address and login link. */
  announce?: (line: string) => void;
}

export class Supervisor {
  private config: Config;
  /** Fixed at start: the pid file and socket stay where they were made even if a reload moves varDir. */
  private readonly varDir: string;
  private readonly log: Logger;
  private readonly closeLog: () => void;
  private readonly slots = new Map<string, Slot>();
  private readonly startedAt = new Date();
  private readonly id: string;
  private server: ControlServer | null = null;
  private out: OutFile | null = null;
  /** TASKMILL_DATABASE as started; handed to the modules over IPC, never in their environment. */
  private readonly databaseOverride: string | null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private store: Store | null = null;
  private stopping: Promise<void> | null = null;
  private reloading = false;
  private summaryId = 0;
  /** The Web module's address while it serves. */
  private webUrl: string | null = null;
  private readonly pendingSummaries = new Map<number, (s: ModuleSummary[]) => void>();

  constructor(private readonly options: SupervisorOptions) {
    this.databaseOverride = process.env.TASKMILL_DATABASE || null;
    this.config = this.loadConfig();
    this.varDir = this.config.varDir;
    const paths = daemonPaths(this.varDir);
    const log = openModuleLog({
      dir: paths.logDir,
      name: 'Main',
      level: options.debug ? 'debug' : this.config.log.level,
      retentionDays: this.config.log.retentionDays,
      console: options.debug && options.foreground,
      // Main.log's lines are mostly about a module: its name and pid are theirs, given per line.
      base: {},
    });
    this.log = log.logger;
    this.closeLog = log.close;
    this.id = `${hostname()}:${process.pid}:${this.startedAt.getTime()}`;
  }

  get paths() {
    return daemonPaths(this.varDir);
  }

  /**
   * Takes the pid file (refusing when a daemon of this varDir runs), opens the control socket and
   * starts the modules. The socket listens before the pid file appears, so a pid file naming a
   * live daemon always has a socket that confirms it.
   */
  async start(): Promise<void> {
    const { dir, pidFile } = this.paths;
    makePrivateDir(dir);
    await withStartLock(this.varDir, async () => {
      const running = await lookup(this.varDir, true);
      if (running.pid !== null) throw alreadyRunning(running.pid);
      if (running.stale) this.log.info('removed a stale pid file', { reason: running.stale.reason });
      this.server = await listenControl(this.paths.socket, (cmd) => this.answer(cmd), (message, context) => this.log.warn(message, context));
      try {
        writePidFile(pidFile, process.pid);
      } catch (err) {
        await this.server.close();
        this.server = null;
        throw err;
      }
    });
    this.out = openOutFile({
      dir: this.paths.logDir,
      retentionDays: this.config.log.retentionDays,
      onError: (message, context) => this.log.error(message, context),
    });
    for (const m of configuredModules(this.config)) if (m.enabled) this.spawn(m.name);
    this.log.info('daemon started', { pid: process.pid, modules: [...this.slots.keys()] });
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    void this.heartbeat();
  }

  /** Stops every module (the worker hands back unfinished tasks) and removes the pid file. */
  stop(force: boolean): Promise<void> {
    if (this.stopping) {
      if (force) this.sendAll({ t: 'stop', force: true });
      return this.stopping;
    }
    this.stopping = (async () => {
      this.log.info('daemon stopping', { force });
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      await this.stopModules(force);
      await this.server?.close();
      try {
        await this.store?.removeDaemon(this.id);
      } catch (err) {
        this.log.warn('could not remove the heartbeat', { error: (err as Error).message });
      }
      await this.store?.close().catch(() => undefined);
      removePidFile(this.paths.pidFile, process.pid);
      this.out?.close();
      this.log.info('daemon stopped');
      this.closeLog();
    })();
    return this.stopping;
  }

  /** What the control socket answers. */
  private answer(cmd: ControlCommand): DaemonStatus | DaemonIdentity | Promise<unknown> {
    if (cmd === 'summary') return this.summaries();
    if (cmd === 'identity') return { pid: process.pid, varDir: resolvedVarDir(this.varDir), startedAt: this.startedAt.toISOString() };
    return this.status();
  }

  /** The config file and TASKMILL_DATABASE as the daemon was started with it. */
  private loadConfig(): Config {
    return loadConfig({
      file: this.options.configFile ?? undefined,
      env: { ...process.env, TASKMILL_DATABASE: this.databaseOverride ?? undefined },
    });
  }

  status(): DaemonStatus {
    return {
      pid: process.pid,
      host: hostname(),
      startedAt: this.startedAt.toISOString(),
      configFile: this.config.file,
      modules: [...this.slots.values()].map((s) => ({ ...s.status })),
      web: this.webUrl,
    };
  }

  /** Every running module's summary tables. */
  async summaries(): Promise<{ module: string; summaries: ModuleSummary[] }[]> {
    const out: { module: string; summaries: ModuleSummary[] }[] = [];
    await Promise.all(
      [...this.slots.entries()].map(async ([name, slot]) => {
        const child = slot.child;
        if (!child?.connected) return;
        const id = ++this.summaryId;
        const summaries = await new Promise<ModuleSummary[]>((resolve) => {
          const timer = setTimeout(() => {
            this.pendingSummaries.delete(id);
            resolve([]);
          }, 5_000);
          this.pendingSummaries.set(id, (s) => {
            clearTimeout(timer);
            resolve(s);
          });
          this.send(child, { t: 'summary', id });
        });
        out.push({ module: name, summaries });
      }),
    );
    return out.sort((a, b) => a.module.localeCompare(b.module));
  }

  private spawn(name: string): void {
    const previous = this.slots.get(name);
    const inherit = this.options.debug && this.options.foreground;
    // The name in argv shows in `ps`; the rest comes over IPC (see ModuleInit). The database URL
    // stays out of the environment, which every process the module starts would inherit.
    const env = { ...process.env };
    delete env.TASKMILL_DATABASE;
    const child = fork(RUNNER, [name], {
      env,
      cwd: this.config.baseDir,
      stdio: inherit ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (d: Buffer) => this.out?.write(d));
      stream?.on('error', (err) => this.log.warn('reading a module output failed', { module: name, error: err.message }));
    }
    const slot: Slot = {
      status: {
        name,
        pid: child.pid ?? null,
        state: 'starting',
        loops: 0,
        restarts: previous ? previous.status.restarts + 1 : 0,
        lastError: previous?.status.lastError ?? null,
        startedAt: new Date().toISOString(),
      },
      child,
      discarded: false,
      crashes: previous?.crashes ?? 0,
      spawnedAt: Date.now(),
      timer: null,
      exited: Promise.resolve(),
    };
    this.slots.set(name, slot);
    child.on('message', (m: ToSupervisor) => this.onMessage(slot, m));
    // A message to a module that is just exiting fails with EPIPE; without a listener that error
    // would end the main daemon. The module's exit is handled by 'exit' below.
    child.on('error', (err) => this.log.warn('module process channel error', { module: name, error: err.message }));
    slot.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        slot.child = null;
        slot.status.pid = null;
        this.onExit(slot, code, signal);
        resolve();
      });
    });
    this.log.info('module started', { module: name, pid: child.pid, restarts: slot.status.restarts });
  }

  private onMessage(slot: Slot, m: ToSupervisor): void {
    if (m.t === 'hello') {
      // A stop sent before the module listened was lost: it gets one now instead of its init.
      if (this.stopping || this.reloading) {
        if (slot.child) this.send(slot.child, { t: 'stop', force: false });
        return;
      }
      const init: ModuleInit = {
        t: 'init',
        configFile: this.config.file,
        goodConfig: this.config,
        database: this.databaseOverride,
        debug: this.options.debug,
        foreground: this.options.foreground,
      };
      if (slot.child) this.send(slot.child, init);
    } else if (m.t === 'state') {
      slot.status.state = m.state;
      slot.status.loops = m.loops;
      if (m.lastError) slot.status.lastError = m.lastError;
    } else if (m.t === 'discard') {
      slot.discarded = true;
      this.log.info('module discarded itself', { module: slot.status.name, reason: m.reason });
    } else if (m.t === 'reload') {
      void this.reload();
    } else if (m.t === 'web') {
      this.onWeb(m.url, m.loginLink);
    } else if (m.t === 'summary') {
      this.pendingSummaries.get(m.id)?.(m.summary);
      this.pendingSummaries.delete(m.id);
    }
  }

  /**
   * The Web module serves (or stopped serving). The one-time login link goes to the console and this
   * log, as the operator who just started the daemon looks there; it works once and for 24 hours.
   */
  private onWeb(url: string | null, loginLink: string | null): void {
    const changed = url !== this.webUrl;
    this.webUrl = url;
    if (url && changed) {
      this.log.info('the admin page and API are served', { url });
      this.options.announce?.(`admin page and API on ${url}`);
    }
    if (loginLink) {
      this.log.info(`no user or token exists yet: log in once with ${loginLink} (valid for 24 hours, until used)`);
      this.options.announce?.(`No user or token exists yet: log in once with ${loginLink}`);
      this.options.announce?.('(valid for 24 hours, until used; or add a user with "taskmill user add NAME --role admin")');
    }
  }

  private onExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    const name = slot.status.name;
    if (name === 'Web') this.webUrl = null;
    if (this.stopping || this.reloading) return;
    if (slot.discarded) {
      slot.crashes = 0;
      this.spawn(name);
      return;
    }
    if (Date.now() - slot.spawnedAt > HEALTHY_AFTER_MS) slot.crashes = 0;
    const delay = Math.min(MAX_RESPAWN_DELAY_MS, 1_000 * 2 ** slot.crashes);
    slot.crashes++;
    slot.status.state = 'crashed';
    slot.status.lastError = `exited with ${signal ? `signal ${signal}` : `code ${code}`}`;
    this.log.error('module process ended unexpectedly; starting it again', {
      module: name,
      code,
      signal,
      retryInMs: delay,
    });
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (!this.stopping && !this.reloading) this.spawn(name);
    }, delay);
  }

  /** Restarts every module with the configuration now on disk (ConfigSync found a valid change). */
  private async reload(): Promise<void> {
    if (this.reloading || this.stopping) return;
    let next: Config;
    try {
      next = this.loadConfig();
    } catch (err) {
      this.log.error('the changed config is invalid; keeping the last good one', { error: (err as Error).message });
      return;
    }
    this.reloading = true;
    this.log.info('config changed: restarting the modules');
    await this.stopModules(false);
    this.config = next;
    this.reloading = false;
    if (this.stopping) return;
    for (const m of configuredModules(this.config)) if (m.enabled) this.spawn(m.name);
  }

  private async stopModules(force: boolean): Promise<void> {
    for (const slot of this.slots.values()) if (slot.timer) clearTimeout(slot.timer);
    this.sendAll({ t: 'stop', force });
    const grace = (force ? this.config.worker.forceStopTimeout : this.config.worker.stopTimeout) + 5_000;
    const all = Promise.all([...this.slots.values()].map((s) => s.exited));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, grace)))]);
    clearTimeout(timer);
    for (const slot of this.slots.values()) {
      if (slot.child) {
        this.log.error('module did not stop in time; killing it', { module: slot.status.name, pid: slot.child.pid });
        slot.child.kill('SIGKILL');
      }
    }
    await all;
    this.slots.clear();
  }

  private sendAll(m: ToModule): void {
    for (const slot of this.slots.values()) if (slot.child) this.send(slot.child, m);
  }

  /** Sends to a module; one that is exiting is not an error (its exit is handled on its own). */
  private send(child: ChildProcess, m: ToModule): void {
    if (!child.connected) return;
    child.send(m, (err) => {
      if (err) this.log.debug('a module did not take a message; it is exiting', { pid: child.pid, error: err.message });
    });
  }

  private async heartbeat(): Promise<void> {
    try {
      this.store ??= await openStore(this.config.database);
      const now = new Date();
      await this.store.heartbeat({
        id: this.id,
        host: hostname(),
        pid: process.pid,
        startedAt: this.startedAt,
        lastSeen: now,
        modules: this.status().modules.map((m) => ({ ...m })),
      });
    } catch (err) {
      // The database may be down; the modules wait for it, and so does the heartbeat.
      this.log.warn('could not write the heartbeat', { error: (err as Error).message });
      const s = this.store;
      this.store = null;
      await s?.close().catch(() => undefined);
    }
  }
}
