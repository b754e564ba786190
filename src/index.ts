// taskmill's public API. Nothing else is public.
export { Taskmill } from './client/taskmill.js';
export type { AddOptions, ListFilter, OpenOptions, ScheduleInfo, TaskSpec, WorkerOverrides } from './client/taskmill.js';
export { Scheduler } from './scheduler/scheduler.js';
export type { ReconcileReport, ScheduleSpec } from './scheduler/reconcile.js';
export type { CatchUp, Overlap, Schedule, ScheduleRule } from './model/schedule.js';
export { Worker } from './worker/worker.js';
export type { StopOptions, WorkerOptions } from './worker/worker.js';
export type { Handler, HandlerOptions, TaskContext } from './worker/handlers.js';
export type { Config, ConfigInput } from './config/schema.js';
export { loadConfig } from './config/load.js';
export { parseDuration } from './config/duration.js';
export type { Backoff, Json, LockInfo, Task, TaskStatus } from './model/task.js';
export { TASK_STATUSES } from './model/task.js';
export type { Clock } from './model/clock.js';
export type { Logger } from './model/logger.js';
export * from './model/errors.js';
export type { ExternalTransaction, Store, StoreEvent } from './store/store.js';
export type { DaemonModule, ModuleContext, ModuleSettings, ModuleSummary, SummaryColumn } from './daemon/module.js';
export type { DaemonHeartbeat } from './model/daemon.js';
// --- Task queries, bulk actions, stats, daemon status, progress and typed payloads ---
export type {
  BulkAction,
  BulkResult,
  BulkTarget,
  DaemonStatus,
  SortOrder,
  TaskListItem,
  TaskPage,
  TaskProgress,
  TaskQuery,
  TaskQueryFilter,
  TaskSchemaInfo,
  TaskSort,
  TaskStats,
} from './model/query.js';
export { defineTask } from './worker/handlers.js';
export type { DefinedTask } from './worker/handlers.js';
export { HEARTBEAT_STALE_MS } from './model/daemon.js';
/** Where `count` stops when given no cap; a count equal to it means "at least". */
export { DEFAULT_COUNT_CAP } from './client/queries.js';
// Follow-ups and retention
export type { PruneOptions, PruneReport } from './client/taskmill.js';
export type { FollowUp, PrunableStatus, PruneRequest } from './store/store.js';
// --- Notifications and task events
export { TaskEvents } from './notify/events.js';
export type { TaskEventBase, TaskEventListener, TaskEventMap, TaskEventName } from './notify/events.js';
export { Notifier } from './notify/notifier.js';
export type { NotifierOptions, PassReport } from './notify/notifier.js';
export { signWebhook } from './notify/webhook.js';
export type { Notification, NotificationKind } from './model/notification.js';
// --- Isolated handlers (a pool of child processes) ---
export type { IsolationMode, IsolationOptions } from './worker/isolation/isolation.js';
// --- Web: users, tokens and sessions, through mill.auth.
export type { SessionInfo, TokenInfo, UserInfo, WebAuth } from './client/auth.js';
export type { UserRole } from './model/user.js';
