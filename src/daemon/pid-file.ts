// The pid file (varDir/daemon/taskmill.pid) and the start lock beside it. The file is trusted only
// when the process it names answers on this varDir's control socket as this installation's
// daemon: a pid reused by another process (PID 1 in a container after a crash) is not ours, so it
// neither blocks a start nor is signalled by a stop.
import { linkSync, readFileSync, realpathSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { TaskmillError } from '../model/errors.js';
import { askDaemon, ControlSocketError, type DaemonIdentity } from './control-socket.js';
import { daemonPaths } from './protocol.js';

export interface DaemonLookup {
  /** The running daemon of this varDir, confirmed on its control socket. */
  pid: number | null;
  /** A pid file that names no daemon of ours: why (removed when the lookup was asked to clean). */
  stale: { pid: number | null; reason: string } | null;
}

/** A lock left by a start that crashed in its critical section (milliseconds long) is this old at most. */
const LOCK_STALE_MS = 60_000;

export function alreadyRunning(pid: number): TaskmillError {
  return new TaskmillError('ALREADY_RUNNING', `the daemon is already running (pid ${pid}); stop it first with "taskmill stop".`);
}

/**
 * The daemon of `varDir`, if one runs. With `clean`, a stale pid file is removed, under the start
 * lock so that a daemon starting meanwhile keeps its own.
 */
export async function findDaemon(varDir: string, { clean = false, timeoutMs = 5_000 } = {}): Promise<DaemonLookup> {
  const first = await lookup(varDir, false, timeoutMs);
  if (!clean || first.stale === null) return first;
  return withStartLock(varDir, () => lookup(varDir, true, timeoutMs));
}

/** The lookup itself; `remove` only while holding the start lock. */
export async function lookup(varDir: string, remove: boolean, timeoutMs = 5_000): Promise<DaemonLookup> {
  const { pidFile } = daemonPaths(varDir);
  // The daemon removes its file as it stops, so the file may vanish between any two steps here.
  const text = readPidFile(pidFile);
  if (text === null) return { pid: null, stale: null };
  const parsed = Number(text.trim());
  const pid = Number.isInteger(parsed) && parsed > 0 ? parsed : null;
  let reason: string;
  if (pid === null) {
    reason = `it holds no pid: ${JSON.stringify(text.slice(0, 40))}`;
  } else if (!processAlive(pid)) {
    reason = `pid ${pid} is not running`;
  } else {
    const confirmed = await confirm(varDir, pid, timeoutMs);
    if (confirmed) return { pid, stale: null };
    reason = `pid ${pid} is not this installation's daemon`;
  }
  // Removed only if it still holds what was read.
  if (remove && readPidFile(pidFile) === text) rmSync(pidFile, { force: true });
  return { pid: null, stale: { pid, reason } };
}

/**
 * Whether `pid` is the daemon of `varDir`: the control socket answers with that pid and this
 * varDir. Something that listens there but does not answer in time is taken for our daemon, busy:
 * only the owner can create a socket in the 0700 folder, and the pid it named is still alive.
 */
async function confirm(varDir: string, pid: number, timeoutMs: number): Promise<boolean> {
  try {
    const id = await askDaemon<DaemonIdentity>(varDir, 'identity', timeoutMs);
    return id.pid === pid && id.varDir === resolvedVarDir(varDir);
  } catch (err) {
    return err instanceof ControlSocketError && err.reason === 'silent';
  }
}

export function resolvedVarDir(varDir: string): string {
  try {
    return realpathSync(varDir);
  } catch {
    return varDir;
  }
}

/**
 * Writes the pid file; exclusive (it appears whole, and only if there is none). Called under the
 * start lock after the lookup found no daemon, so an existing file means one bypassed the lock.
 */
export function writePidFile(pidFile: string, pid: number): void {
  const tmp = `${pidFile}.${pid}`;
  writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
  try {
    linkSync(tmp, pidFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const other = Number(readPidFile(pidFile)?.trim());
    throw alreadyRunning(other);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Removes the pid file if it still names `pid` (a later daemon may have written its own). */
export function removePidFile(pidFile: string, pid: number): void {
  if (readPidFile(pidFile)?.trim() === String(pid)) rmSync(pidFile, { force: true });
}

/**
 * Runs `fn` holding varDir/daemon/start.lock, created with O_EXCL: two starts at the same moment
 * take turns, so only one of them finds no daemon and writes its pid. Waits up to `timeoutMs`.
 */
export async function withStartLock<T>(varDir: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const { startLock } = daemonPaths(varDir);
  const mine = `${process.pid}\n`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      writeFileSync(startLock, mine, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // An empty file is a lock being written just now: held.
    const text = readPidFile(startLock);
    const holder = Number(text?.trim());
    const abandoned =
      text !== null && ((text !== '' && !processAlive(holder)) || Date.now() - mtimeMs(startLock) > LOCK_STALE_MS);
    if (abandoned && readPidFile(startLock) === text) {
      rmSync(startLock, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new TaskmillError('DAEMON_FAILED', `another start (pid ${text?.trim() || '?'}) holds ${startLock}; try again, or remove the file if no taskmill start runs.`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  try {
    return await fn();
  } finally {
    if (readPidFile(startLock) === mine) unlinkSync(startLock);
  }
}

function mtimeMs(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return Date.now();
  }
}

/** The file's text, or null when there is none. */
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
