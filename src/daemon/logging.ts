// Per-module log files under varDir/log/daemon/ (TaskWorker.log, …, Main.log), written with pino.
// The active file keeps its plain name; at midnight it becomes NAME.YYYY-MM-DD.log and files older
// than the retention are deleted, so operators always tail the same path.
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
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
}

const day = (d: Date) =>
  `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

export function openModuleLog({ dir, name, level, retentionDays, console: toConsole = false, base }: LogOptions): ModuleLog {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.log`);
  // A file left from an earlier day is rotated before we append to it.
  if (existsSync(file)) {
    const written = statSync(file).mtime;
    if (day(written) !== day(new Date())) renameSync(file, path.join(dir, `${name}.${day(written)}.log`));
  }
  prune(dir, name, retentionDays);
  const dest = pino.destination({ dest: file, sync: true, mkdir: true });
  const streams: pino.StreamEntry[] = [{ level, stream: dest }];
  if (toConsole) streams.push({ level, stream: process.stderr });
  const p = pino({ level, base: base ?? { module: name, pid: process.pid } }, pino.multistream(streams));

  let timer: NodeJS.Timeout;
  const scheduleRotation = () => {
    const now = new Date();
    const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 0, 0, 0, 50);
    timer = setTimeout(() => {
      try {
        renameSync(file, path.join(dir, `${name}.${day(now)}.log`));
        dest.reopen();
        prune(dir, name, retentionDays);
      } catch (err) {
        p.error({ error: (err as Error).message }, 'log rotation failed; still writing to the old file');
      }
      scheduleRotation();
    }, midnight.getTime() - now.getTime());
    timer.unref();
  };
  scheduleRotation();

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
      clearTimeout(timer);
      dest.flushSync();
    },
  };
}

/** Deletes rotated files of this module older than `retentionDays`. */
function prune(dir: string, name: string, retentionDays: number): void {
  const cutoff = day(new Date(Date.now() - retentionDays * 86_400_000));
  const pattern = new RegExp(`^${name}\\.(\\d{4}-\\d{2}-\\d{2})\\.log$`);
  for (const f of readdirSync(dir)) {
    const m = pattern.exec(f);
    if (m?.[1] && m[1] < cutoff) unlinkSync(path.join(dir, f));
  }
}
