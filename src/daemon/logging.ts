// Per-module log files under varDir/log/daemon/ (TaskWorker.log, …, Main.log), written with pino,
// and daemon.out, what the module processes print. The active file keeps its plain name; at
// midnight it becomes NAME.YYYY-MM-DD.log (daemon.YYYY-MM-DD.out) and files older than the
// retention are deleted, so operators always tail the same path.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { Logger } from '../model/logger.js';

export interface ModuleLog {
  logger: Logger;
  file: string;
  close(): void;
}

export interface LogOptions {
  dir: string;
  name: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  retentionDays: number;
  /** Also print to the console (debug mode in the foreground). */
  console?: boolean;
  /** Fields on every line; by default the module's name and pid. */
  base?: Record<string, unknown>;
  /** The time (tests pin it near midnight); default the system clock. */
  now?: () => Date;
}

const day = (d: Date) =>
  `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

export function openModuleLog({ dir, name, level, retentionDays, console: toConsole = false, base, now = () => new Date() }: LogOptions): ModuleLog {
  const file = prepare({ dir, name, ext: '.log', retentionDays, now });
  const dest = pino.destination({ dest: file, sync: true, mkdir: true });
  const streams: pino.StreamEntry[] = [{ level, stream: dest }];
  if (toConsole) streams.push({ level, stream: process.stderr });
  const p = pino({ level, base: base ?? { module: name, pid: process.pid } }, pino.multistream(streams));

  const cancel = everyMidnight(now, (ended) => {
    try {
      renameSync(file, rotatedName(dir, name, '.log', ended));
      dest.reopen();
      prune(dir, name, '.log', retentionDays, now());
    } catch (err) {
      p.error({ error: (err as Error).message }, 'log rotation failed; still writing to the old file');
    }
  });

  const logger: Logger = {
    debug: (message, context) => p.debug(context ?? {}, message),
    info: (message, context) => p.info(context ?? {}, message),
    warn: (message, context) => p.warn(context ?? {}, message),
    error: (message, context) => p.error(context ?? {}, message),
  };
  return {
    logger,
    file,
    close: () => {
      cancel();
      dest.flushSync();
    },
  };
}

export interface OutFile {
  file: string;
  write(chunk: Buffer): void;
  close(): void;
}

export interface OutFileOptions {
  dir: string;
  retentionDays: number;
  /** Told when rotation fails (the output then goes on into the old file). */
  onError: (message: string, context: Record<string, unknown>) => void;
  now?: () => Date;
}

/**
 * daemon.out, written by the main daemon alone (module processes print into pipes it reads), so
 * at midnight it can move the file aside and go on in a fresh one, with one descriptor in all.
 */
export function openOutFile({ dir, retentionDays, onError, now = () => new Date() }: OutFileOptions): OutFile {
  const file = prepare({ dir, name: 'daemon', ext: '.out', retentionDays, now });
  let fd = openSync(file, 'a', 0o600);
  let closed = false;
  const cancel = everyMidnight(now, (ended) => {
    try {
      renameSync(file, rotatedName(dir, 'daemon', '.out', ended));
      const old = fd;
      fd = openSync(file, 'a', 0o600);
      closeSync(old);
      prune(dir, 'daemon', '.out', retentionDays, now());
    } catch (err) {
      onError('daemon.out rotation failed; still writing to the old file', { error: (err as Error).message });
    }
  });
  return {
    file,
    write: (chunk) => {
      // A pipe may still deliver a module's last lines after the daemon closed the file.
      if (closed) return;
      try {
        writeSync(fd, chunk);
      } catch (err) {
        onError('could not write to daemon.out', { error: (err as Error).message });
      }
    },
    close: () => {
      if (closed) return;
      closed = true;
      cancel();
      closeSync(fd);
    },
  };
}

/**
 * Makes the folder, moves aside a file left from an earlier day (before anything appends to it)
 * and deletes rotated files past the retention. Returns the active file's path.
 */
export function prepare({ dir, name, ext, retentionDays, now }: { dir: string; name: string; ext: string; retentionDays: number; now: () => Date }): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}${ext}`);
  if (existsSync(file)) {
    const written = statSync(file).mtime;
    if (day(written) !== day(now())) renameSync(file, rotatedName(dir, name, ext, written));
  }
  prune(dir, name, ext, retentionDays, now());
  return file;
}

function rotatedName(dir: string, name: string, ext: string, d: Date): string {
  return path.join(dir, `${name}.${day(d)}${ext}`);
}

/** Calls `fn` just after each local midnight with a time of the day that ended; returns a cancel. */
function everyMidnight(now: () => Date, fn: (ended: Date) => void): () => void {
  let timer: NodeJS.Timeout;
  const schedule = () => {
    const t = now();
    const midnight = new Date(t.getFullYear(), t.getMonth(), t.getDate() + 1, 0, 0, 0, 50);
    timer = setTimeout(() => {
      fn(t);
      schedule();
    }, midnight.getTime() - t.getTime());
    timer.unref();
  };
  schedule();
  return () => clearTimeout(timer);
}

/** Deletes rotated files of `name` older than `retentionDays`. */
function prune(dir: string, name: string, ext: string, retentionDays: number, now: Date): void {
  const cutoff = day(new Date(now.getTime() - retentionDays * 86_400_000));
  const pattern = new RegExp(`^${name}\\.(\\d{4}-\\d{2}-\\d{2})${ext.replace('.', '\\.')}$`);
  for (const f of readdirSync(dir)) {
    const m = pattern.exec(f);
    if (m?.[1] && m[1] < cutoff) unlinkSync(path.join(dir, f));
  }
}
