// The main daemon: starts every enabled module in its own process and keeps it alive. A discarded
// module is re-spawned at once; a crashed one after a growing delay (1 s doubling to 30 s). It
// answers `status` and `summary` on a local socket, writes a heartbeat per host into the database,
// and restarts the modules with the new configuration when ConfigSync says it changed.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../model/logger.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/store.js';
import { openModuleLog } from './logging.js';
import { configuredModules, type ModuleSummary } from './module.js';
import { daemonPaths, type ModuleState, type ToModule, type ToSupervisor } from './protocol.js';

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
}

export class Supervisor {
  private config: Config;
  private readonly log: Logger;
  private readonly closeLog: () => void;
  private readonly slots = new Map<string, Slot>();
  private readonly startedAt = new Date();
  private readonly id: string;
  private server: net.Server | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private store: Store | null = null;
  private stopping: Promise<void> | null = null;
  private reloading = false;
  private summaryId = 0;
  private readonly pendingSummaries = new Map<number, (s: ModuleSummary[]) => void>();

  constructor(private readonly options: SupervisorOptions) {
    this.config = loadConfig({ file: options.configFile ?? undefined });
    const paths = daemonPaths(this.config.varDir);
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
    return daemonPaths(this.config.varDir);
  }

  /** Writes the pid file, opens the control socket and starts the modules. */
  async start(): Promise<void> {
    const { dir, pidFile } = this.paths;
    mkdirSync(dir, { recursive: true });
    writeFileSync(pidFile, `${process.pid}\n`);
    await this.listen();
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
      this.server?.close();
      try {
        await this.store?.removeDaemon(this.id);
      } catch (err) {
        this.log.warn('could not remove the heartbeat', { error: (err as Error).message });
      }
      await this.store?.close().catch(() => undefined);
      for (const f of [this.paths.pidFile, this.paths.socket]) rmSync(f, { force: true });
      this.log.info('daemon stopped');
      this.closeLog();
    })();
    return this.stopping;
  }

  status(): DaemonStatus {
    return {
      pid: process.pid,
      host: hostname(),
      startedAt: this.startedAt.toISOString(),
      configFile: this.config.file,
      modules: [...this.slots.values()].map((s) => ({ ...s.status })),
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
    const out = openSync(this.paths.outFile, 'a');
    const inherit = this.options.debug && this.options.foreground;
    const child = fork(RUNNER, [], {
      env: {
        ...process.env,
        TASKMILL_MODULE: name,
        TASKMILL_CONFIG_FILE: this.config.file ?? '',
        // A module re-spawned while the file is broken runs on this instead of failing to start.
        TASKMILL_GOOD_CONFIG: JSON.stringify(this.config),
        TASKMILL_DEBUG: this.options.debug ? '1' : '0',
        TASKMILL_FOREGROUND: this.options.foreground ? '1' : '0',
      },
      cwd: this.config.baseDir,
      stdio: inherit ? ['ignore', 'inherit', 'inherit', 'ipc'] : ['ignore', out, out, 'ipc'],
    });
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
    if (m.t === 'state') {
      slot.status.state = m.state;
      slot.status.loops = m.loops;
      if (m.lastError) slot.status.lastError = m.lastError;
    } else if (m.t === 'discard') {
      slot.discarded = true;
      this.log.info('module discarded itself', { module: slot.status.name, reason: m.reason });
    } else if (m.t === 'reload') {
      void this.reload();
    } else if (m.t === 'summary') {
      this.pendingSummaries.get(m.id)?.(m.summary);
      this.pendingSummaries.delete(m.id);
    }
  }

  private onExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null): void {
    const name = slot.status.name;
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
      next = loadConfig({ file: this.options.configFile ?? undefined });
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

  /** A JSON-lines control socket for `taskmill status` and `taskmill summary`. */
  private async listen(): Promise<void> {
    const { socket } = this.paths;
    rmSync(socket, { force: true });
    this.server = net.createServer((conn) => {
      let buf = '';
      conn.on('data', (d) => {
        buf += d.toString();
        if (!buf.includes('\n')) return;
        let cmd = '';
        try {
          cmd = (JSON.parse(buf.slice(0, buf.indexOf('\n'))) as { cmd?: string }).cmd ?? '';
        } catch {
          conn.end(`${JSON.stringify({ error: 'bad request' })}\n`);
          return;
        }
        const answer = cmd === 'summary' ? this.summaries() : Promise.resolve(this.status());
        answer.then(
          (value) => conn.end(`${JSON.stringify(value)}\n`),
          (err: Error) => conn.end(`${JSON.stringify({ error: err.message })}\n`),
        );
      });
      conn.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(socket, () => resolve());
    });
  }
}

/** The pid in the pid file if that process is alive; a stale file is removed (and reported). */
export function runningPid(varDir: string): { pid: number | null; stale: number | null } {
  const { pidFile } = daemonPaths(varDir);
  // The daemon removes its file as it stops, so the file may vanish between any two steps here.
  const text = readPidFile(pidFile);
  if (text === null) return { pid: null, stale: null };
  const pid = Number(text.trim());
  if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) return { pid, stale: null };
  // Removed only if it still holds what was read: a daemon starting meanwhile writes its own.
  if (readPidFile(pidFile) === text) rmSync(pidFile, { force: true });
  return { pid: null, stale: Number.isInteger(pid) ? pid : null };
}

/** The pid file's text, or null when there is none. */
export function readPidFile(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Whether a process runs. A zombie does not: it has exited and waits for its parent to reap it,
 * which for a detached daemon is PID 1 — late, or never in a container whose PID 1 is no init.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): kill(0) is all we know
  }
}

/** Asks the running daemon over its control socket. */
export function askDaemon<T>(varDir: string, cmd: 'status' | 'summary', timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(daemonPaths(varDir).socket);
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`the daemon did not answer "${cmd}" within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    conn.on('connect', () => conn.write(`${JSON.stringify({ cmd })}\n`));
    conn.on('data', (d) => (buf += d.toString()));
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as T);
      } catch (err) {
        reject(err as Error);
      }
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
