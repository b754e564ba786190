// One handler process of the pool: starting it, talking to it, reading its memory, ending it
// (SIGTERM, then SIGKILL after a grace period) and saying how it died.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FromChild, IsolationMode, ToChild } from './protocol.js';

/** How long a new process may take to say it is ready (loading Node, and tsx from source). */
const START_TIMEOUT_MS = 30_000;
/** How much of its error output is kept to explain a death. */
const TAIL_BYTES = 4_096;
/** After its exit, how long its pipes may stay open (held by a process it started). */
const CLOSE_WAIT_MS = 200;

// From source (tests, tsx) the child is child.ts and needs the tsx loader; built, child.js alone.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = fileURLToPath(new URL(FROM_SOURCE ? './child.ts' : './child.js', import.meta.url));
const LOADER = FROM_SOURCE ? ['--import', import.meta.resolve('tsx')] : [];

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class HandlerProcess {
  readonly pid: number | undefined;
  /** Tasks this process finished. */
  tasks = 0;
  /** Replaced after this many tasks (the pool's limit, spread a little). */
  maxTasks = Number.POSITIVE_INFINITY;
  /** Handlers it loaded (told once per version), with the isolation each asks for. */
  readonly loaded = new Map<string, IsolationMode | null>();
  /** Resolves once the process said it is ready; rejects (and the process is killed) if it never does. */
  readonly ready: Promise<void>;
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  /** Set when the pool decided to end it (why, for the task's error). */
  endReason: string | null = null;
  onMessage: ((message: FromChild) => void) | null = null;
  /**
   * Called once when it has exited (after its output was read), if set then: the task running in it
   * sets it and clears it when done. One hook per process, not a handler per task on `exited`, so a
   * finished task's ctx and output are not held until the process exits.
   */
  onExit: ((exit: Exit) => void) | null = null;
  /** Whether `exited` has resolved (onExit was called, or would have been). */
  gone = false;
  /** What the process writes to stdout / stderr itself (not through console), line by line. */
  onRawLine: ((stream: 'stdout' | 'stderr', line: string) => void) | null = null;
  private readonly proc: ChildProcess;
  /** Why it could not be started at all (it never ran). */
  private spawnError: Error | null = null;
  private stderrTail = '';
  private killTimer: NodeJS.Timeout | null = null;
  private killAt = Number.POSITIVE_INFINITY;
  private sentKill = false;

  constructor(tasksDir: string, maxHeapMb: number, execPath = process.execPath) {
    this.proc = spawn(execPath, [...LOADER, `--max-old-space-size=${maxHeapMb}`, ENTRY, tasksDir], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    this.pid = this.proc.pid;
    // Its exit counts once its output is read too ('close'), so a death is explained by its last
    // words; a grandchild holding the pipes open delays that by CLOSE_WAIT_MS at most.
    this.exited = new Promise((resolve) => {
      // A spawn that fails (no such binary, no resources) emits 'error' and never 'exit': that counts
      // as its exit, or kill() and the pool's close() would wait forever. ('error' after a real spawn
      // is a failed kill or send; its 'exit' still comes.)
      this.proc.on('error', (err) => {
        if (this.exit !== null || this.proc.pid !== undefined) return;
        this.spawnError = err;
        this.exit = { code: null, signal: null };
        if (this.killTimer) clearTimeout(this.killTimer);
        resolve(this.exit);
      });
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        if (this.killTimer) clearTimeout(this.killTimer);
        const exit = this.exit;
        const timer = setTimeout(() => resolve(exit), CLOSE_WAIT_MS);
        this.proc.once('close', () => {
          clearTimeout(timer);
          resolve(exit);
        });
      });
    });
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`it did not get ready within ${START_TIMEOUT_MS / 1000} s`));
        void this.kill(0);
      }, START_TIMEOUT_MS);
      this.proc.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      void this.exited.then((exit) => {
        clearTimeout(timer);
        reject(new Error(this.describe(exit)));
      });
      this.proc.on('message', (message: FromChild) => {
        if (message.t === 'ready') {
          clearTimeout(timer);
          resolve();
        } else this.onMessage?.(message);
      });
    });
    this.ready.catch(() => {});
    void this.exited.then((exit) => {
      this.gone = true;
      this.onExit?.(exit);
    });
    this.lines(this.proc.stdout, 'stdout');
    this.lines(this.proc.stderr, 'stderr');
  }

  get alive(): boolean {
    return this.exit === null;
  }

  /** Told to end (SIGTERM or SIGKILL sent): it serves no more tasks. */
  get ending(): boolean {
    return this.killAt !== Number.POSITIVE_INFINITY || this.sentKill;
  }

  /** Sends a message; returns the error when it cannot be serialised (a closed channel is not one: the exit says that). */
  send(message: ToChild): Error | null {
    if (!this.proc.connected) return null;
    try {
      this.proc.send(message, undefined, undefined, () => {});
      return null;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /** SIGTERM now, SIGKILL after `graceMs` (0: SIGKILL now); a second call can only bring SIGKILL closer. */
  kill(graceMs: number): Promise<Exit> {
    if (!this.alive) return this.exited;
    const at = Date.now() + graceMs;
    if (graceMs === 0) {
      this.sentKill = true;
      this.proc.kill('SIGKILL');
    } else if (this.killAt === Number.POSITIVE_INFINITY) {
      this.proc.kill('SIGTERM');
    }
    if (graceMs > 0 && at < this.killAt) {
      this.killAt = at;
      if (this.killTimer) clearTimeout(this.killTimer);
      this.killTimer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    }
    return this.exited;
  }

  /** Resident memory in bytes, read from /proc (Linux); null where that is not available. */
  rssBytes(): number | null {
    if (!this.alive || this.pid === undefined) return null;
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return match ? Number(match[1]) * 1024 : null;
    } catch {
      return null;
    }
  }

  /** "exited with code 3", "was killed by SIGKILL", with the line of its error output that says why. */
  describe(exit: Exit): string {
    if (this.spawnError) return `could not be started (${this.spawnError.message})`;
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    const why = this.lastWords();
    return why ? `${how} (${why})` : how;
  }

  /** Its error output's last lines: a V8 fatal error or an uncaught error, if any. */
  errorTail(): string {
    return this.stderrTail.trim();
  }

  private lastWords(): string | null {
    const lines = this.stderrTail.split('\n').map((l) => l.trim()).filter((l) => l && !/^Node\.js v\d/.test(l));
    const fatal = lines.find((l) => l.includes('FATAL ERROR'));
    if (fatal) return fatal;
    const thrown = lines.findLast((l) => /^[\w.]*(Error|Exception)\b.*:/.test(l) || /^Uncaught\b/.test(l));
    return thrown ?? lines.at(-1) ?? null;
  }

  private lines(stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr'): void {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      if (name === 'stderr') this.stderrTail = (this.stderrTail + chunk).slice(-TAIL_BYTES);
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) this.onRawLine?.(name, line);
    });
    stream.on('end', () => {
      if (partial) this.onRawLine?.(name, partial);
      partial = '';
    });
  }
}
