// What the admin page, the API and applications ask of the task table as a whole: filters, pages,
// counts, statistics and progress. Plain data; the rules live in the client and each store.
import type { DaemonHeartbeat } from './daemon.js';
import type { Json, Task, TaskStatus } from './task.js';
export type { TaskProgress } from './task.js';

/** A task as a listing shows it: everything but the large fields (output, result, stack). */
export type TaskListItem = Omit<Task, 'output' | 'result' | 'errorStack'>;

/** Which tasks: every field optional, all given ones must hold. */
export interface TaskQueryFilter {
  status?: TaskStatus[];
  name?: string;
  queue?: string;
  schedule?: string;
  /** createdAt ≥ createdFrom */
  createdFrom?: Date;
  /** createdAt < createdTo */
  createdTo?: Date;
  /** Case-insensitive substring of the payload (as JSON text), the note or the error. */
  text?: string;
}

export type TaskSort = 'id' | 'runAt' | 'finishedAt';
export type SortOrder = 'asc' | 'desc';

/** A page of tasks as the client asks for it: filter, order, size and an opaque keyset cursor. */
export interface TaskQuery extends TaskQueryFilter {
  /** Default 'id' (creation order). 'finishedAt' lists only tasks that have finished. */
  sort?: TaskSort;
  /** Default 'desc' (newest first). */
  order?: SortOrder;
  /** Default 50, at most 500. */
  limit?: number;
  /** From the previous page's `nextCursor`; null or absent for the first page. */
  cursor?: string | null;
}

export interface TaskPage {
  tasks: TaskListItem[];
  /** Null when there is nothing after this page. */
  nextCursor: string | null;
}

export type BulkAction = 'retry' | 'cancel' | 'delete';
export type BulkTarget = { ids: number[] } | { filter: TaskQueryFilter };

export interface BulkResult {
  /** Tasks the target named (that exist). */
  matched: number;
  /** Those that took the action; the others could not (a COMPLETED task cannot be cancelled) and were skipped. */
  changed: number;
}

export interface TaskStats {
  byStatus: Record<TaskStatus, number>;
  byQueue: { queue: string; counts: Record<TaskStatus, number> }[];
  /** The last 60 minutes, oldest first, zero-filled; `minute` is the start of each minute. */
  perMinute: { minute: Date; completed: number; failed: number }[];
  /** The newest 10 FAILED tasks, newest first. */
  latestFailures: TaskListItem[];
}

export interface DaemonStatus {
  /** A daemon sent a heartbeat within HEARTBEAT_STALE_MS. */
  running: boolean;
  /**
   * Running: when the longest-lived live daemon started. Not running: when the last heartbeat was
   * seen (the outage began then, as far as heartbeats tell); null when no daemon ever left one.
   */
  since: Date | null;
  /** Hosts with a live daemon (or, when none runs, the hosts last seen). */
  hosts: string[];
  daemons: DaemonHeartbeat[];
}

export interface TaskSchemaInfo {
  /** The payload's JSON Schema, when the handler's validator can give one. */
  jsonSchema: unknown;
  /** The handler's `example` export, if any. */
  example: Json | null;
}
