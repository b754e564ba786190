// Every error taskmill raises on purpose: a stable `code` and a message that says what to do.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'INVALID_INPUT'
  | 'UNKNOWN_TASK'
  | 'TASK_NOT_FOUND'
  | 'UNKNOWN_PREREQUISITE'
  | 'INVALID_TRANSITION'
  | 'DATABASE_UNREACHABLE'
  | 'DATABASE_BUSY'
  | 'SCHEMA_TOO_NEW'
  | 'WAIT_TIMEOUT'
  | 'HANDLER_INVALID'
  | 'HANDLER_PROCESS_FAILED'
  | 'TASK_TIMEOUT'
  | 'ALREADY_RUNNING'
  | 'DAEMON_FAILED';

export class TaskmillError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The config file or an option has a wrong value; the message names key, value and what is allowed. */
export class ConfigError extends TaskmillError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
  }
}

/** Input from a caller (API, CLI, HTTP) is malformed. */
export class InvalidInputError extends TaskmillError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

export class UnknownTaskError extends TaskmillError {
  constructor(
    readonly taskName: string,
    readonly known: readonly string[],
    tasksDir: string,
  ) {
    super(
      'UNKNOWN_TASK',
      `unknown task "${taskName}": no handler file for it in ${tasksDir}. ` +
        (known.length > 0
          ? `Known tasks: ${known.join(', ')}.`
          : `No handlers found; create ${tasksDir}/${taskName}.ts exporting a default async function.`),
    );
  }
}

export class TaskNotFoundError extends TaskmillError {
  constructor(readonly taskId: number) {
    super('TASK_NOT_FOUND', `task #${taskId} does not exist; list tasks with "taskmill tasks".`);
  }
}

export class UnknownPrerequisiteError extends TaskmillError {
  constructor(readonly missing: readonly number[]) {
    super(
      'UNKNOWN_PREREQUISITE',
      `unknown prerequisite task ${missing.map((id) => `#${id}`).join(', ')}: ` +
        'every id given in "after" must name an existing task.',
    );
  }
}

export class InvalidTransitionError extends TaskmillError {
  constructor(taskId: number, from: string, action: string, allowed: string) {
    super('INVALID_TRANSITION', `cannot ${action} task #${taskId}: it is ${from}; only ${allowed} tasks can be.`);
  }
}

export class DatabaseUnreachableError extends TaskmillError {
  constructor(where: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'DATABASE_UNREACHABLE',
      `cannot open the database ${where}: ${reason}. Check "database" in the config or TASKMILL_DATABASE.`,
      { cause },
    );
  }
}

/** Another process held SQLite's write lock for longer than a write waits (nothing was written). */
export class DatabaseBusyError extends TaskmillError {
  constructor(where: string, waitedMs: number) {
    super(
      'DATABASE_BUSY',
      `the database ${where} stayed locked by another process's write for ${Math.round(waitedMs / 1000)} s; ` +
        'nothing was written. Find the process that holds a long write transaction on it, or move to PostgreSQL.',
    );
  }
}

export class SchemaTooNewError extends TaskmillError {
  constructor(found: number, known: number) {
    super(
      'SCHEMA_TOO_NEW',
      `the database was written by a newer taskmill (schema version ${found}; this one knows up to ${known}). ` +
        'Upgrade taskmill on this host; nothing was changed.',
    );
  }
}

export class WaitTimeoutError extends TaskmillError {
  constructor(taskId: number, ms: number, status: string) {
    super('WAIT_TIMEOUT', `task #${taskId} is still ${status} after waiting ${ms} ms.`);
  }
}

export class HandlerError extends TaskmillError {
  constructor(message: string) {
    super('HANDLER_INVALID', message);
  }
}

/** An isolated handler's process died, could not start, or was ended for its memory (worker.isolation). */
export class HandlerProcessError extends TaskmillError {
  constructor(message: string) {
    super('HANDLER_PROCESS_FAILED', message);
  }
}

export class TaskTimeoutError extends TaskmillError {
  constructor(ms: number) {
    super('TASK_TIMEOUT', `the handler did not finish within its timeout of ${ms} ms; raise "timeout" for this task if it needs longer.`);
  }
}

// --- Deleting tasks (the admin page, the API, `taskmill rm`) ---

/** A running task cannot be deleted: its handler would go on without a row to report to. */
export class TaskRunningError extends InvalidTransitionError {
  constructor(taskId: number) {
    super(taskId, 'STARTED', 'delete', 'WAITING, COMPLETED, FAILED or CANCELLED');
    this.message =
      `cannot delete task #${taskId}: it is STARTED (running). Cancel it first ("taskmill cancel ${taskId}"), ` +
      'then delete it once it has ended.';
  }
}

/** A task that live tasks wait for cannot be deleted: they would wait for nothing, or run too early. */
export class DependantsExistError extends InvalidTransitionError {
  constructor(
    taskId: number,
    status: string,
    readonly dependants: readonly number[],
  ) {
    super(taskId, status, 'delete', 'tasks no WAITING or STARTED task depends on');
    const shown = dependants.slice(0, 10).map((id) => `#${id}`).join(', ') + (dependants.length > 10 ? ', …' : '');
    this.message =
      `cannot delete task #${taskId}: ${shown} ${dependants.length === 1 ? 'depends' : 'depend'} on it and ` +
      `${dependants.length === 1 ? 'has' : 'have'} not ended. Cancel or delete ${dependants.length === 1 ? 'that task' : 'those tasks'} first.`;
  }
}
