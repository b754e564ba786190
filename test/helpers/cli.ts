// Runs the built CLI (dist/cli/main.js) as a real process, as a user or a script would.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const CLI_MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

export interface CliOptions {
  cwd: string;
  /** Added to the environment, after TASKMILL_* from the test's own environment are removed. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has ended. */
  exited: Promise<CliResult>;
  /** Resolves once stdout matches; rejects if the process ends first or `timeoutMs` passes. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGKILL if still running; for cleanup. */
  kill(): Promise<void>;
}

export function startCli(args: readonly string[], { cwd, env = {} }: CliOptions): CliProcess {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TASKMILL_')));
  const started = Date.now();
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout: out, stderr: err, ms: Date.now() - started }));
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForStdout(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out)) {
        if (!running() || Date.now() > deadline) {
          throw new Error(`taskmill ${args.join(' ')}: no ${pattern} on stdout.\nstdout: ${out}\nstderr: ${err}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited.catch(() => undefined);
    },
  };
}

/** Runs one command to its end; a command still running after `timeoutMs` is killed and fails the test. */
export async function runCli(args: readonly string[], options: CliOptions): Promise<CliResult> {
  const p = startCli(args, options);
  const timeoutMs = options.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void p.kill();
      reject(new Error(`taskmill ${args.join(' ')} did not finish within ${timeoutMs} ms.\nstderr: ${p.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The command failed as it should: this exit code, nothing on stdout, one line on stderr matching `pattern`. */
export function assertError(r: CliResult, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `expected exit ${code}, got ${r.code}; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^taskmill: [^\n]+\n$/, 'one line on stderr');
  assert.match(r.stderr, pattern);
}

/** The command succeeded; returns its stdout. */
export function assertOk(r: CliResult): string {
  assert.equal(r.code, 0, `exit ${r.code}; stderr: ${r.stderr}`);
  return r.stdout;
}
