// What a running daemon tells the others (and the application) about itself.
import type { Json } from './task.js';

export interface DaemonHeartbeat {
  /** host:pid:start time, unique per daemon run. */
  id: string;
  host: string;
  pid: number;
  startedAt: Date;
  lastSeen: Date;
  /** Its modules: name, pid, state, loops, restarts, last error. */
  modules: Json;
}

/** A daemon not seen for this long is shown as gone. */
export const HEARTBEAT_STALE_MS = 60_000;
