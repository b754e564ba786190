// A throw-away project for daemon tests: taskmill.config.json, tasks/ and var/ in a temp dir, run
// with the built CLI (dist/cli/main.js) as real processes. `cleanup()` stops the daemon and makes
// sure no process of the project outlives the test: `stop --force`, then SIGKILL to the daemon's
// process group and to every process found working in the project dir.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TaskJson } from '../../src/cli/output.js';
import { Taskmill } from '../../src/client/taskmill.js';
import type { DaemonStatus, ModuleStatus } from '../../src/daemon/supervisor.js';
import { type CliResult, runCli } from './cli.js';

export const BUILT_IN = ['TaskWorker', 'Scheduler', 'ConfigSync', 'Maintenance'];

export interface StatusJson {
  running: boolean;
  daemon: DaemonStatus | null;
  cluster: unknown[] | null;
}

/** Appends "<id> <pid>" to the file named by payload.log and returns the pid; with payload.gate it
 * first waits (honouring its signal) until that file exists. */
export const RECORD_HANDLER = `
import { appendFileSync, existsSync } from 'node:fs';
export default async function (payload: { log: string; gate?: string }, ctx: { task: { id: number }; signal: AbortSignal }) {
  if (payload.gate) {
    while (!existsSync(payload.gate)) {
      if (ctx.signal.aborted) throw new Error('stopped while waiting for the gate');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  appendFileSync(payload.log, ctx.task.id + ' ' + process.pid + '\\n');
  return process.pid;
}
`;

/** Never settles and ignores its signal. */
export const DEAF_HANDLER = 'export default () => new Promise(() => {});\n';

export interface DaemonProjectOptions {
  /** The project directory (created if missing). */
  dir: string;
  database: string;
  /** Merged over the base config (worker merged key by key). */
  config?: Record<string, unknown>;
  handlers?: Record<string, string>;
}

export class DaemonProject {
  readonly dir: string;
  readonly configFile: string;
  readonly logDir: string;
  readonly pidFile: string;
  readonly database: string;
  /** Every pid seen in a `status --json`: killed at cleanup if still alive. */
  readonly seenPids = new Set<number>();
  private base: Record<string, unknown>;
  private client: Taskmill | null = null;

  constructor({ dir, database, config = {}, handlers = {} }: DaemonProjectOptions) {
    mkdirSync(path.join(dir, 'tasks'), { recursive: true });
    this.dir = realpathSync(dir);
    this.database = database;
    this.configFile = path.join(this.dir, 'taskmill.config.json');
    const varDir = typeof config.varDir === 'string' ? config.varDir : 'var';
    this.logDir = path.join(this.dir, varDir, 'log', 'daemon');
    this.pidFile = path.join(this.dir, varDir, 'daemon', 'taskmill.pid');
    this.base = {
      database,
      tasksDir: 'tasks',
      varDir,
      worker: { lease: '2s', pollInterval: '50ms', stopTimeout: '3s' },
      log: { level: 'info' },
      // Daemon tests run side by side: the Web module would fight over one port (it has its own tests).
      web: { enabled: false },
    };
    this.writeConfig(config);
    for (const [name, source] of Object.entries(handlers)) this.writeFile(`tasks/${name}.ts`, source);
  }

  /** Writes taskmill.config.json: the base settings with `over` merged in. */
  writeConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
    const config = {
      ...this.base,
      ...over,
      worker: { ...(this.base.worker as object), ...((over.worker as object | undefined) ?? {}) },
    };
    this.writeConfigText(`${JSON.stringify(config, null, 2)}\n`);
    return config;
  }

  /** Replaces taskmill.config.json at once (write + rename), so no process reads it half written. */
  writeConfigText(text: string): void {
    const tmp = `${this.configFile}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, this.configFile);
  }

  writeFile(rel: string, text: string): string {
    const file = path.join(this.dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
    return file;
  }

  path(rel: string): string {
    return path.join(this.dir, rel);
  }

  /** Runs the CLI in the project dir; `env` is added to its environment. */
  cli(args: string[], timeoutMs = 30_000, env: Record<string, string> = {}): Promise<CliResult> {
    return runCli(args, { cwd: this.dir, timeoutMs, env });
  }

  /** Runs a command that must exit 0; returns its stdout. */
  async ok(...args: string[]): Promise<string> {
    const r = await this.cli(args);
    assert.equal(r.code, 0, `taskmill ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  }

  /** `status --json` (with `--config FILE` when given). */
  async status(configFile?: string): Promise<StatusJson> {
    const r = await this.cli([...(configFile ? ['--config', configFile] : []), 'status', '--json']);
    assert.ok(r.code === 0 || r.code === 3, `status --json exited ${r.code}: ${r.stderr}`);
    const s = JSON.parse(r.stdout) as StatusJson;
    assert.equal(r.code, s.running ? 0 : 3, 'the exit code matches "running"');
    if (s.daemon) {
      this.seenPids.add(s.daemon.pid);
      for (const m of s.daemon.modules) if (m.pid !== null) this.seenPids.add(m.pid);
    }
    return s;
  }

  /** Polls `status --json` until `check` returns a value. Deadlines are generous: they only bound a
   * failure, and module processes take seconds to start on a loaded 2-core machine. */
  async waitStatus<T>(check: (s: StatusJson) => T | undefined | null | false, what: string, timeoutMs = 60_000, configFile?: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: StatusJson | null = null;
    for (;;) {
      last = await this.status(configFile);
      const value = check(last);
      if (value !== undefined && value !== null && value !== false) return value;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; last status: ${JSON.stringify(last.daemon?.modules ?? last)}${this.diagnostics()}`,
        );
      }
      await pause(150);
    }
  }

  /** Waits until every named module runs (state "running", a pid) and returns the status. */
  waitRunning(names: readonly string[] = BUILT_IN, timeoutMs = 60_000): Promise<DaemonStatus> {
    return this.waitStatus(
      (s) => (s.daemon && names.every((n) => moduleOf(s.daemon, n)?.state === 'running' && moduleOf(s.daemon, n)?.pid) ? s.daemon : undefined),
      `modules ${names.join(', ')} running`,
      timeoutMs,
    );
  }

  /** `taskmill start` (with `env` added); returns the daemon's status once the named modules run. */
  async start(names: readonly string[] = BUILT_IN, env: Record<string, string> = {}): Promise<DaemonStatus> {
    const r = await this.cli(['start'], 30_000, env);
    assert.equal(r.code, 0, `taskmill start exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    const out = r.stdout;
    const pid = Number(/daemon started \(pid (\d+)\)/.exec(out)?.[1]);
    assert.ok(pid > 0, `start names the pid: ${out}`);
    this.seenPids.add(pid);
    const status = await this.waitRunning(names);
    assert.equal(status.pid, pid);
    return status;
  }

  async show(id: number | string): Promise<TaskJson> {
    return JSON.parse(await this.ok('show', String(id), '--json')) as TaskJson;
  }

  /** `tasks --json`: every task, newest first. */
  async tasks(): Promise<TaskJson[]> {
    return JSON.parse(await this.ok('tasks', '--limit', '10000', '--json')) as TaskJson[];
  }

  /** Polls `tasks --json` until the given tasks (all tasks when omitted) have `status`. */
  async waitTasks(status: string, ids: readonly number[] | null, what: string, timeoutMs = 60_000): Promise<TaskJson[]> {
    let last: TaskJson[] = [];
    try {
      return await waitFor(async () => {
        last = (await this.tasks()).filter((t) => ids === null || ids.includes(t.id));
        return (ids === null || last.length === ids.length) && last.every((t) => t.status === status) ? last : undefined;
      }, what, timeoutMs, 200);
    } catch (err) {
      const statuses = last.map((t) => `${t.id}:${t.status}`).join(' ');
      throw new Error(`${(err as Error).message}; tasks: ${statuses}${this.diagnostics()}`);
    }
  }

  /** `waitFor`, with the daemon's recent log lines in the error. */
  async waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
    try {
      return await waitFor(check, what, timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}${this.diagnostics()}`);
    }
  }

  /** The last lines of Main.log and daemon.out (and of the named modules' logs), for a failure message. */
  diagnostics(modules: readonly string[] = []): string {
    const tail = (file: string, n: number) => `\n  ${file}:\n    ${lines(path.join(this.logDir, file)).slice(-n).join('\n    ')}`;
    return [tail('Main.log', 15), tail('daemon.out', 10), ...modules.map((m) => tail(`${m}.log`, 10))].join('');
  }

  /** Adds a task with the CLI; returns its id. */
  async add(...args: string[]): Promise<number> {
    return Number((await this.ok('add', ...args)).trim());
  }

  /** A client on the project's database (for adding and reading many tasks at once). */
  async mill(): Promise<Taskmill> {
    this.client ??= await Taskmill.open({ file: this.configFile, env: {} });
    return this.client;
  }

  async closeMill(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.close();
  }

  /** Parsed lines of var/log/daemon/NAME.log (later duplicate keys win, as JSON.parse does). */
  logRecords(name: string): Record<string, unknown>[] {
    const file = path.join(this.logDir, `${name}.log`);
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  pidFromFile(): number | null {
    if (!existsSync(this.pidFile)) return null;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    return pid > 0 ? pid : null;
  }

  /** Processes of this project still alive: every node process working in the project dir. */
  processes(): number[] {
    return projectProcesses(this.dir);
  }

  /**
   * Stops the daemon and kills whatever is left. Returns what went wrong (a stop that failed, a
   * process left behind after a stop that claimed success) for the caller to report.
   */
  async cleanup(): Promise<string[]> {
    const problems: string[] = [];
    await this.closeMill().catch(() => undefined);
    const mainPid = this.pidFromFile();
    if (mainPid !== null && alive(mainPid)) {
      this.seenPids.add(mainPid);
      const r = await this.cli(['stop', '--force'], 40_000).catch((err: Error) => ({ code: -1, stderr: err.message, stdout: '' }));
      if (r.code !== 0) {
        problems.push(`stop --force exited ${r.code}: ${r.stderr.trim()}`);
        // The CLI could not do it (a broken config, say): signal the daemon ourselves.
        signal(mainPid, 'SIGUSR2');
        await until(() => !alive(mainPid), 15_000);
      }
    }
    const left = [...new Set([...this.processes(), ...[...this.seenPids].filter(alive)])].filter((p) => p !== process.pid);
    if (left.length > 0) {
      problems.push(`processes left behind: ${left.join(', ')}`);
      if (mainPid !== null) signal(-mainPid, 'SIGKILL');
      for (const pid of left) signal(pid, 'SIGKILL');
      if (!(await until(() => left.every((p) => !alive(p)), 10_000))) problems.push(`could not kill ${left.filter(alive).join(', ')}`);
    }
    return problems;
  }
}

export function moduleOf(daemon: DaemonStatus | null | undefined, name: string): ModuleStatus | undefined {
  return daemon?.modules.find((m) => m.name === name);
}

/** Every process (but this one) whose working directory is `dir` or below it. */
export function projectProcesses(dir: string): number[] {
  if (!existsSync('/proc')) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if ((cwd === dir || cwd.startsWith(`${dir}/`)) && alive(pid)) pids.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** How many file descriptors `pid` has open (Linux). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until true or `timeoutMs` passes; returns whether it became true. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await pause(everyMs);
  }
}

/** Polls `check` until it returns a value other than undefined/false; throws naming `what` on timeout. */
export async function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(everyMs);
  }
}

/** The lines of a file ([] while it does not exist). */
export function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}
