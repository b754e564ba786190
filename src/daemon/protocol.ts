// Messages between the main daemon and its module processes (Node IPC), and the paths they share.
import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { ModuleSummary } from './module.js';

export type ModuleState = 'starting' | 'waiting for the database' | 'running' | 'stopping';

export type ToSupervisor =
  /** The module process is listening: send it its `init`. */
  | { t: 'hello' }
  | { t: 'state'; state: ModuleState; loops: number; lastError: string | null }
  | { t: 'discard'; reason: string }
  | { t: 'reload' }
  | { t: 'summary'; id: number; summary: ModuleSummary[] }
  /** The Web module's address (null: not serving) and one-time login link, if it made one. */
  | { t: 'web'; url: string | null; loginLink: string | null };

/**
 * What a module process needs to start. It comes over IPC, not the environment, so the database
 * URL (and its password) is not inherited by every process a module or a task handler starts.
 */
export interface ModuleInit {
  t: 'init';
  configFile: string | null;
  /** The main daemon's last good configuration: used while the file on disk is broken. */
  goodConfig: Config;
  /** TASKMILL_DATABASE as the main daemon was started with it (it wins over the file). */
  database: string | null;
  debug: boolean;
  foreground: boolean;
}

export type ToModule = ModuleInit | { t: 'stop'; force: boolean } | { t: 'summary'; id: number };

/** Where the daemon keeps its pid file, control socket and logs. */
export function daemonPaths(varDir: string) {
  const dir = path.join(varDir, 'daemon');
  return {
    dir,
    pidFile: path.join(dir, 'taskmill.pid'),
    /** Held for the few milliseconds a start (or a stale-file clean-up) checks and writes the pid file. */
    startLock: path.join(dir, 'start.lock'),
    socket: path.join(dir, 'control.sock'),
    logDir: path.join(varDir, 'log', 'daemon'),
    outFile: path.join(varDir, 'log', 'daemon', 'daemon.out'),
  };
}
