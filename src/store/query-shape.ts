// What both engines' task queries share: the LIKE pattern of a text search, the split of a
// multi-status page into one index range per status, and the zero-filled per-minute slots of stats.
import { TASK_STATUSES, type TaskStatus } from '../model/task.js';
import type { TaskListItem } from '../model/query.js';
import type { TaskPageRequest } from './store.js';

/** The hour `stats().perMinute` covers. */
export const PER_MINUTE_WINDOW = 60 * 60_000;

/** A case-insensitive substring pattern for LIKE / ILIKE with `\` as the escape character. */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function zeroCounts(): Record<TaskStatus, number> {
  return Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
}

/** The 60 minutes up to and including `now`'s, oldest first, each at zero. */
export function perMinuteSlots(now: Date): { minute: Date; completed: number; failed: number }[] {
  const current = Math.floor(now.getTime() / 60_000) * 60_000;
  return Array.from({ length: 60 }, (_, i) => ({ minute: new Date(current - (59 - i) * 60_000), completed: 0, failed: 0 }));
}

/**
 * Runs a page in id order with several statuses as one page per status (each walks its own range of
 * the index tasks_by_status (status, id) and stops after `limit` rows), merged: no engine can read
 * several ranges of one index in id order, and a scan of the whole table in id order would pass every
 * row of the other statuses. Other pages run as they are.
 */
export function mergePages(page: TaskPageRequest, run: (page: TaskPageRequest) => TaskListItem[]): TaskListItem[] {
  const statuses = page.filter.status ?? [];
  if (page.sort !== 'id' || statuses.length < 2) return run(page);
  return merged(page, statuses.map((status) => run(withStatus(page, status))));
}

/**
 * As mergePages, for an engine whose queries are asynchronous. `splitAll` says which other pages to
 * split, by every status, when the filter names none (PostgreSQL: indexes that cover finished tasks
 * only, which a page can use once its status says it reads finished tasks).
 */
export async function mergePagesAsync(
  page: TaskPageRequest,
  run: (page: TaskPageRequest) => Promise<TaskListItem[]>,
  splitAll: (page: TaskPageRequest) => boolean = () => false,
): Promise<TaskListItem[]> {
  const named = page.filter.status ?? [];
  const statuses = named.length === 0 && splitAll(page) ? TASK_STATUSES : named;
  if (statuses.length < 2 || (page.sort !== 'id' && named.length > 0)) return run(page);
  return merged(page, await Promise.all(statuses.map((status) => run(withStatus(page, status)))));
}

function withStatus(page: TaskPageRequest, status: TaskStatus): TaskPageRequest {
  return { ...page, filter: { ...page.filter, status: [status] } };
}

/** The pages' rows in the page's own order (its sort column, then id), cut to its limit. */
function merged(page: TaskPageRequest, pages: TaskListItem[][]): TaskListItem[] {
  const key = (t: TaskListItem): number =>
    page.sort === 'runAt' ? t.runAt.getTime() : page.sort === 'finishedAt' ? (t.finishedAt?.getTime() ?? 0) : 0;
  const sign = page.order === 'desc' ? -1 : 1;
  const rows = pages.flat();
  rows.sort((a, b) => sign * (key(a) - key(b) || a.id - b.id));
  return rows.slice(0, page.limit);
}
