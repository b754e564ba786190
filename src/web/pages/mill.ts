// What the pages read and change, as the client offers it: the part of Taskmill they call, so the
// pages state their whole dependency in one place.
import type { Taskmill } from '../../client/taskmill.js';
import type { DaemonHeartbeat } from '../../model/daemon.js';
import type { Json, Task, TaskStatus } from '../../model/task.js';

export interface TaskQuery {
  status?: TaskStatus[];
  name?: string;
  queue?: string;
  schedule?: string;
  createdFrom?: Date;
  createdTo?: Date;
  text?: string;
  sort?: 'id' | 'runAt' | 'finishedAt';
  order?: 'asc' | 'desc';
  limit?: number;
  cursor?: string | null;
}
export type TaskFilterQuery = Omit<TaskQuery, 'sort' | 'order' | 'limit' | 'cursor'>;
export type Progress = { value: Json; message: string | null; at: Date } | null;
export type TaskWithProgress = Task & { progress?: Progress };
export type TaskListItem = Omit<TaskWithProgress, 'output' | 'result' | 'errorStack'>;

export interface Stats {
  byStatus: Record<TaskStatus, number>;
  byQueue: { queue: string; counts: Record<TaskStatus, number> }[];
  perMinute: { minute: Date; completed: number; failed: number }[];
  latestFailures: TaskListItem[];
}

export interface DaemonStatusInfo {
  running: boolean;
  since: Date | null;
  hosts: string[];
  daemons: DaemonHeartbeat[];
}

/** The client methods the pages use (Taskmill has them all). */
export interface PagesMill {
  config: Taskmill['config'];
  add: Taskmill['add'];
  get(id: number): Promise<TaskWithProgress | null>;
  cancel: Taskmill['cancel'];
  retry: Taskmill['retry'];
  schedule: Taskmill['schedule'];
  unschedule: Taskmill['unschedule'];
  schedules: Taskmill['schedules'];
  setScheduleEnabled: Taskmill['setScheduleEnabled'];
  runSchedule: Taskmill['runSchedule'];
  daemons: Taskmill['daemons'];
  query(q: TaskQuery): Promise<{ tasks: TaskListItem[]; nextCursor: string | null }>;
  count(q: TaskFilterQuery, cap?: number): Promise<number>;
  delete(id: number): Promise<void>;
  bulk(
    action: 'retry' | 'cancel' | 'delete',
    target: { ids: number[] } | { filter: TaskFilterQuery },
  ): Promise<{ matched: number; changed: number }>;
  dependants(id: number): Promise<TaskListItem[]>;
  stats(): Promise<Stats>;
  daemonStatus(): Promise<DaemonStatusInfo>;
  taskNames(): string[];
  taskSchema(name: string): Promise<{ jsonSchema: unknown | null; example: Json | null } | null>;
}
