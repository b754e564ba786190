// Everything the CLI prints is shaped here: tables, task details, JSON and times, so commands agree.
import type { ScheduleInfo } from '../client/taskmill.js';
import { formatDuration } from '../config/duration.js';
import type { Logger } from '../model/logger.js';
import type { Json, Task, TaskProgress } from '../model/task.js';
import type { TaskListItem } from '../model/query.js';
import { isoSeconds } from '../model/clock.js';

export { isoSeconds };
import type { DaemonHeartbeat } from '../model/daemon.js';
import type { ModuleSummary } from '../daemon/module.js';
import type { DaemonStatus } from '../daemon/supervisor.js';
import { describeRule } from '../scheduler/rules.js';

/** A task as JSON: every field of Task, camelCase, times as ISO-8601 strings. */
export type TaskJson = {
  [K in Exclude<keyof Task, 'progress'>]: Task[K] extends Date ? string : Task[K] extends Date | null ? string | null : Task[K];
} & { progress: ProgressJson };

export function taskJson(task: Task): TaskJson {
  return {
    ...task,
    progress: progressJson(task.progress),
    runAt: task.runAt.toISOString(),
    createdAt: task.createdAt.toISOString(),
    startedAt: isoOrNull(task.startedAt),
    finishedAt: isoOrNull(task.finishedAt),
    leaseExpiresAt: isoOrNull(task.leaseExpiresAt),
    scheduledFor: isoOrNull(task.scheduledFor),
  };
}

// --- Task lists and progress (list items leave out output, result and the stack) ---

/** A task list item as JSON: times as ISO-8601 strings, as taskJson. */
export type TaskListJson = Omit<TaskJson, 'output' | 'result' | 'errorStack'>;

export function taskListJson(task: TaskListItem): TaskListJson {
  return {
    ...task,
    runAt: task.runAt.toISOString(),
    createdAt: task.createdAt.toISOString(),
    startedAt: isoOrNull(task.startedAt),
    finishedAt: isoOrNull(task.finishedAt),
    leaseExpiresAt: isoOrNull(task.leaseExpiresAt),
    scheduledFor: isoOrNull(task.scheduledFor),
    progress: progressJson(task.progress),
  };
}

type ProgressJson = { value: Json; message: string | null; at: string } | null;

function progressJson(p: TaskProgress | null): ProgressJson {
  return p ? { value: p.value, message: p.message, at: p.at.toISOString() } : null;
}

/** "40%", "3/10" ({ done, total }), or the object as compact JSON; then the message. */
export function progressText(p: TaskProgress | null): string {
  if (!p) return '-';
  const v = p.value;
  let shown: string;
  if (typeof v === 'number') shown = `${Math.round(v * 10) / 10}%`;
  else if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.done === 'number' && typeof v.total === 'number') {
    shown = `${v.done}/${v.total}`;
  } else shown = JSON.stringify(v);
  return p.message ? `${shown} ${p.message}` : shown;
}

function isoOrNull(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}


export function printLine(text = ''): void {
  process.stdout.write(`${text}\n`);
}

export function printJson(value: unknown): void {
  printLine(JSON.stringify(value, null, 2));
}

/** Errors take one line on stderr, whatever the message looked like. */
export function printError(message: string): void {
  process.stderr.write(`taskmill: ${oneLine(message)}\n`);
}

export function oneLine(message: string): string {
  return message
    .replace(/:\s*\n\s*-\s*/g, ': ')
    .replace(/\s*\n\s*-\s*/g, '; ')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
}

/** Columns padded to their widest cell; `right` lists the columns aligned right (numbers). */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], right: readonly number[] = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right.includes(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function tasksTable(tasks: readonly TaskListItem[]): string {
  const rows = tasks.map((t) => [
    String(t.id),
    t.name,
    t.status,
    t.queue,
    String(t.priority),
    `${t.attempts}/${t.maxAttempts}`,
    isoSeconds(t.runAt),
    isoSeconds(t.createdAt),
    shorten(progressText(t.progress), 24),
    shorten(remark(t), 60),
  ]);
  return table(['ID', 'NAME', 'STATUS', 'QUEUE', 'PRI', 'ATTEMPTS', 'RUN AT', 'CREATED', 'PROGRESS', 'NOTE / ERROR'], rows, [0, 4]);
}

/** The error when it explains the status (failed, or waiting to retry); otherwise the note. */
function remark(t: TaskListItem): string {
  if (t.cancelRequested) return 'cancel requested';
  if (t.status === 'FAILED' || t.status === 'WAITING') return t.error ?? t.note ?? '';
  return t.note ?? t.error ?? '';
}

function shorten(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Every field of one task, for `show`: aligned key/value lines, then the multi-line blocks. */
export function taskDetails(t: Task): string {
  const when = (d: Date | null) => (d ? d.toISOString() : '-');
  const fields: [string, string][] = [
    ['id', String(t.id)],
    ['name', t.name],
    ['status', t.cancelRequested ? `${t.status} (cancel requested)` : t.status],
    ['queue', t.queue],
    ['priority', String(t.priority)],
    ['attempts', `${t.attempts}/${t.maxAttempts}`],
    ['run at', t.runAt.toISOString()],
    ['created', t.createdAt.toISOString()],
    ['started', when(t.startedAt)],
    ['finished', when(t.finishedAt)],
    ['timeout', formatDuration(t.timeoutMs)],
    ['backoff', `${formatDuration(t.backoff.baseMs)}, doubling up to ${formatDuration(t.backoff.maxMs)}`],
    ['after', t.prerequisites.length > 0 ? t.prerequisites.map((id) => `#${id}`).join(', ') : '-'],
    ['unique key', t.uniqueKey ?? '-'],
    ['note', t.note ?? '-'],
    ['locked by', t.lockedBy ? `${t.lockedBy.workerId} (host ${t.lockedBy.host}, pid ${t.lockedBy.pid})` : '-'],
    ['lease until', when(t.leaseExpiresAt)],
    ['progress', t.progress ? `${progressText(t.progress)} (at ${t.progress.at.toISOString()})` : '-'],
    ['payload', JSON.stringify(t.payload)],
    ['result', t.result === null ? '-' : JSON.stringify(t.result)],
    ['error', t.error ?? '-'],
  ];
  const width = Math.max(...fields.map(([k]) => k.length));
  // A multi-line value (an error message) continues under its first line.
  const lines = fields.map(([k, v]) => `${k.padEnd(width)}  ${v.split('\n').join(`\n${' '.repeat(width + 2)}`)}`);
  lines.push(...block('output', t.output), ...block('stack', t.errorStack ? t.errorStack.split('\n') : []));
  return lines.join('\n');
}

function block(title: string, lines: readonly string[]): string[] {
  if (lines.length === 0) return [];
  return ['', `${title}:`, ...lines.map((l) => `  ${l}`)];
}

/** The worker's own warnings and errors, for `work` in the foreground: one line each on stderr. */
export const stderrLogger: Logger = {
  debug: () => undefined,
  info: (message, context) => logLine('info', message, context),
  warn: (message, context) => logLine('warn', message, context),
  error: (message, context) => logLine('error', message, context),
};

function logLine(level: string, message: string, context?: Record<string, unknown>): void {
  const extra = context && Object.keys(context).length > 0 ? ` ${JSON.stringify(context)}` : '';
  process.stderr.write(`${new Date().toISOString()} ${level}: ${message}${extra}\n`);
}

/** "7 CANCELLED": the id and status, for cancel and retry. */
export function taskStatusLine(t: Task): string {
  return `${t.id} ${t.status}${t.cancelRequested ? ' (cancel requested; its worker stops it)' : ''}`;
}

/** A schedule as JSON: every field of ScheduleInfo, camelCase, times (and `next`) as ISO-8601 strings. */
export type ScheduleJson = {
  [K in keyof ScheduleInfo]: ScheduleInfo[K] extends Date
    ? string
    : ScheduleInfo[K] extends Date | null
      ? string | null
      : ScheduleInfo[K] extends Date[]
        ? string[]
        : ScheduleInfo[K];
};

export function scheduleJson(s: ScheduleInfo): ScheduleJson {
  return {
    ...s,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
    anchorAt: s.anchorAt.toISOString(),
    lastDueAt: isoOrNull(s.lastDueAt),
    lastFiredAt: isoOrNull(s.lastFiredAt),
    lastSkippedAt: isoOrNull(s.lastSkippedAt),
    next: s.next.map((d) => d.toISOString()),
  };
}

/**
 * One row per schedule; its second and third fire times continue the NEXT column on the lines below.
 * The time zone only applies to cron rules.
 */
export function schedulesTable(schedules: readonly ScheduleInfo[]): string {
  const rows: string[][] = [];
  for (const s of schedules) {
    const [first = '-', ...more] = s.next.map(isoSeconds);
    rows.push([
      s.name,
      s.task,
      describeRule(s.rule),
      s.rule.kind === 'cron' ? s.rule.timezone : '-',
      s.enabled ? 'enabled' : 'paused',
      s.source,
      lastRun(s),
      first,
      lastSkip(s),
    ]);
    for (const next of more) rows.push(['', '', '', '', '', '', '', next, '']);
  }
  return table(['NAME', 'TASK', 'RULE', 'TIME ZONE', 'STATE', 'SOURCE', 'LAST RUN', 'NEXT', 'LAST SKIP'], rows);
}

function lastRun(s: ScheduleInfo): string {
  if (!s.lastFiredAt) return '-';
  return s.lastTaskId === null ? isoSeconds(s.lastFiredAt) : `${isoSeconds(s.lastFiredAt)} #${s.lastTaskId}`;
}

function lastSkip(s: ScheduleInfo): string {
  if (!s.lastSkippedAt) return '-';
  return shorten(`${isoSeconds(s.lastSkippedAt)} ${s.lastSkipReason ?? ''}`, 80);
}

/** "nightly: next at 2026-01-02T03:00:00.000Z", or "nightly: paused": what add, pause and resume print. */
export function scheduleLine(s: ScheduleInfo): string {
  if (!s.enabled) return `${s.name}: paused`;
  const next = s.next[0];
  return next ? `${s.name}: next at ${next.toISOString()}` : `${s.name}: never fires again`;
}

/** `taskmill status`: this host's daemon and its modules, then the cluster's daemons. */
export function formatDaemonStatus(local: DaemonStatus | null, cluster: DaemonHeartbeat[] | null, staleMs: number): string {
  const lines: string[] = [];
  if (!local) {
    lines.push('taskmill daemon: not running');
  } else {
    const up = local.startedAt ? formatDuration(Date.now() - Date.parse(local.startedAt)) : '?';
    lines.push(`taskmill daemon: running (pid ${local.pid}, up ${up})`);
    if (local.modules.length > 0) {
      lines.push(
        table(
          ['MODULE', 'PID', 'STATE', 'LOOPS', 'RESTARTS', 'LAST ERROR'],
          local.modules.map((m) => [m.name, m.pid === null ? '-' : String(m.pid), m.state, String(m.loops), String(m.restarts), oneLine(m.lastError ?? '-')]),
          [1, 3, 4],
        ),
      );
    }
  }
  if (cluster === null) {
    lines.push('cluster: the database does not answer');
  } else {
    const others = cluster.filter((d) => !(local && d.pid === local.pid && d.host === local.host));
    if (others.length > 0) {
      lines.push('other daemons on this database:');
      lines.push(
        table(
          ['HOST', 'PID', 'STARTED', 'LAST SEEN', ''],
          others.map((d) => [
            d.host,
            String(d.pid),
            isoSeconds(d.startedAt),
            isoSeconds(d.lastSeen),
            Date.now() - d.lastSeen.getTime() > staleMs ? 'gone?' : '',
          ]),
          [1],
        ),
      );
    }
  }
  return lines.join('\n');
}

/** `taskmill summary`: one aligned table per module summary, as Maint::Daemon::Summary prints them. */
export function summaryTables(all: readonly { module: string; summaries: readonly ModuleSummary[] }[]): string {
  const out: string[] = [];
  for (const { module, summaries } of all) {
    for (const s of summaries) {
      out.push(`${module}: ${s.header}`);
      if (s.rows.length === 0) {
        out.push(`  ${s.noDataMessage}`, '');
        continue;
      }
      const cell = (v: string | number | null | undefined, size: number) => String(v ?? '-').slice(0, size).padEnd(size);
      out.push(`  ${s.columns.map((c) => cell(c.displayName, c.size)).join(' ').trimEnd()}`);
      for (const r of s.rows) out.push(`  ${s.columns.map((c) => cell(r[c.name], c.size)).join(' ').trimEnd()}`);
      out.push('');
    }
  }
  return out.length > 0 ? out.join('\n').trimEnd() : 'no module has a summary';
}
