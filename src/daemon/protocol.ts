// Messages between the main daemon and its module processes (Node IPC), and the paths they share.
import path from 'node:path';
import type { ModuleSummary } from './module.js';

export type ModuleState = 'starting' | 'waiting for the database' | 'running' | 'stopping';

export type ToSupervisor =
  | { t: 'state'; state: ModuleState; loops: number; lastError: string | null }
  | { t: 'discard'; reason: string }
  | { t: 'reload' }
  | { t: 'summary'; id: number; summary: ModuleSummary[] };

export type ToModule = { t: 'stop'; force: boolean } | { t: 'summary'; id: number };

/** Where the daemon keeps its pid file, control socket and logs. */
export function daemonPaths(varDir: string) {
  const dir = path.join(varDir, 'daemon');
  return {
    dir,
    pidFile: path.join(dir, 'taskmill.pid'),
    socket: path.join(dir, 'control.sock'),
    logDir: path.join(varDir, 'log', 'daemon'),
    outFile: path.join(varDir, 'log', 'daemon', 'daemon.out'),
  };
}

/** Graceful stop of the task worker: running tasks get this long before they go back to WAITING. */
export const EXIT_DISCARDED = 0;
