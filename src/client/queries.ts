// The client edge of task queries: validates a TaskQuery once, turns the opaque cursor into a keyset
// position and back, and runs bulk actions in short steps. The Taskmill methods call these.
import { InvalidInputError, InvalidTransitionError, TaskNotFoundError } from '../model/errors.js';
import type { BulkAction, BulkResult, BulkTarget, TaskListItem, TaskPage, TaskQuery, TaskQueryFilter } from '../model/query.js';
import { isTaskStatus, type TaskStatus } from '../model/task.js';
import { checkScheduleName } from '../scheduler/reconcile.js';
import type { Store, TaskKey, TaskPageRequest } from '../store/store.js';
import { validateTaskName } from '../worker/handlers.js';

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;
/** Where `count` stops unless told otherwise: beyond it a confirmation says "more than". */
export const DEFAULT_COUNT_CAP = 10_000;
const MAX_COUNT_CAP = 10_000_000;
/** Longest free-text search. */
const MAX_TEXT = 200;
/** Most ids one bulk call may name (a larger selection is a filter). */
export const MAX_BULK_IDS = 10_000;
/** Tasks one step of a bulk action by filter reads; each action is its own short transaction. */
const BULK_STEP = 500;
/** Retries or cancels in flight at once on PostgreSQL. */
const BULK_PARALLEL = 8;

const SORTS = ['id', 'runAt', 'finishedAt'] as const;
const ORDERS = ['asc', 'desc'] as const;
const PAGE_KEYS = new Set(['status', 'name', 'queue', 'schedule', 'createdFrom', 'createdTo', 'text', 'sort', 'order', 'limit', 'cursor']);

function checkKeys(input: object, allowed: Set<string>, what: string): void {
  for (const key of Object.keys(input)) {
    if (!allowed.has(key)) {
      throw new InvalidInputError(`unknown field "${key}" in the ${what}: use ${[...allowed].join(', ')}.`);
    }
  }
}

function checkDate(value: unknown, field: string): Date {
  const d = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : null;
  if (!d || Number.isNaN(d.getTime())) {
    throw new InvalidInputError(`invalid ${field} ${JSON.stringify(value)}: use a Date or an ISO-8601 time such as 2026-12-01T09:00:00Z.`);
  }
  return d;
}

/** Validates a filter and returns it in the stored forms (task names lower case). */
export function checkFilter(input: unknown, what = 'task filter'): TaskQueryFilter {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) throw new InvalidInputError(`the ${what} must be an object.`);
  const q = input as Record<string, unknown>;
  // A filter given a whole query (sort, limit, cursor too) uses its filter fields: no harm in the rest.
  checkKeys(q, PAGE_KEYS, what);
  const f: TaskQueryFilter = {};
  if (q.status !== undefined) {
    const list = Array.isArray(q.status) ? (q.status as unknown[]) : [q.status];
    for (const s of list) {
      if (typeof s !== 'string' || !isTaskStatus(s)) {
        throw new InvalidInputError(`unknown status ${JSON.stringify(s)}: use WAITING, STARTED, COMPLETED, FAILED or CANCELLED.`);
      }
    }
    if (list.length > 0) f.status = [...new Set(list as TaskStatus[])];
  }
  if (q.name !== undefined) {
    if (typeof q.name !== 'string') throw new InvalidInputError('invalid name: use a task name (a string).');
    f.name = validateTaskName(q.name);
  }
  if (q.queue !== undefined) {
    if (typeof q.queue !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(q.queue)) {
      throw new InvalidInputError(`invalid queue ${JSON.stringify(q.queue)}: use letters, digits, "_", "-", "." or ":".`);
    }
    f.queue = q.queue;
  }
  if (q.schedule !== undefined) f.schedule = checkScheduleName(q.schedule);
  if (q.createdFrom !== undefined) f.createdFrom = checkDate(q.createdFrom, 'createdFrom');
  if (q.createdTo !== undefined) f.createdTo = checkDate(q.createdTo, 'createdTo');
  if (q.text !== undefined) {
    if (typeof q.text !== 'string' || q.text.length === 0 || q.text.length > MAX_TEXT || q.text.includes('\u0000')) {
      throw new InvalidInputError(`invalid text: search for a string of 1 to ${MAX_TEXT} characters (no NUL).`);
    }
    f.text = q.text;
  }
  return f;
}

interface Cursor {
  s: TaskPageRequest['sort'];
  o: TaskPageRequest['order'];
  i: number;
  v: number | null;
}

export function encodeCursor(page: Pick<TaskPageRequest, 'sort' | 'order'>, key: TaskKey): string {
  const c: Cursor = { s: page.sort, o: page.order, i: key.id, v: key.value };
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(text: unknown, sort: TaskPageRequest['sort'], order: TaskPageRequest['order']): TaskKey {
  const bad = () =>
    new InvalidInputError('invalid cursor: pass the nextCursor of the previous page unchanged, or none for the first page.');
  if (typeof text !== 'string' || text.length > 200) throw bad();
  let c: Partial<Cursor>;
  try {
    c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    throw bad();
  }
  if (
    typeof c !== 'object' || c === null || !Number.isSafeInteger(c.i) ||
    !(c.v === null || Number.isFinite(c.v)) || (c.v === null) !== (c.s === 'id')
  ) {
    throw bad();
  }
  if (c.s !== sort || c.o !== order) {
    throw new InvalidInputError(
      `the cursor belongs to a listing sorted by ${String(c.s)} ${String(c.o)}, not ${sort} ${order}; start again without a cursor.`,
    );
  }
  return { id: c.i as number, value: c.v ?? null };
}

/** A TaskQuery as the store's page request (one row more than asked, to know whether another page follows). */
export function toPageRequest(input: TaskQuery | undefined): TaskPageRequest {
  const q = (input ?? {}) as TaskQuery;
  const filter = checkFilter(q, 'task query');
  const sort = q.sort ?? 'id';
  if (!(SORTS as readonly string[]).includes(sort)) {
    throw new InvalidInputError(`invalid sort ${JSON.stringify(sort)}: use ${SORTS.join(', ')}.`);
  }
  const order = q.order ?? 'desc';
  if (!(ORDERS as readonly string[]).includes(order)) {
    throw new InvalidInputError(`invalid order ${JSON.stringify(order)}: use asc or desc.`);
  }
  const limit = q.limit ?? DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new InvalidInputError(`invalid limit ${JSON.stringify(limit)}: use a whole number from 1 to ${MAX_PAGE}.`);
  }
  const after = q.cursor === undefined || q.cursor === null || q.cursor === '' ? null : decodeCursor(q.cursor, sort, order);
  return { filter, sort, order, limit, after };
}

/** How long one page may search windows of ids before it returns what it found, with a cursor to go on. */
export const PAGE_BUDGET_MS = 50;

/**
 * Ids one window reads. A text search reads every row it passes (no index helps a substring), and on
 * SQLite so does a filter on two columns (one index serves it, the other is checked row by row).
 * PostgreSQL turns the payload into text for each row, a costlier step: smaller windows.
 */
function windowFor(engine: Store['engine'], filter: TaskQueryFilter): number | null {
  if (filter.text !== undefined) return engine === 'sqlite' ? 25_000 : 5_000;
  const columns = [filter.status, filter.name, filter.queue, filter.schedule].filter((f) => f !== undefined).length;
  return engine === 'sqlite' && columns >= 2 ? 25_000 : null;
}

/**
 * One page as the client returns it. Most pages are one store call. A page in id order whose filter no
 * index fully serves (see windowFor) is searched in windows of ids, newest (or oldest) first, until it is
 * full or PAGE_BUDGET_MS has passed: then it returns the tasks found so far (possibly none) with a cursor
 * at the window's edge, so every call stays short however rare the matches; null means the end.
 */
export async function runPage(
  store: Store,
  page: TaskPageRequest,
  tuning: { window?: number; budgetMs?: number } = {},
): Promise<TaskPage> {
  const want = page.limit + 1;
  const window = page.sort === 'id' ? (tuning.window ?? windowFor(store.engine, page.filter)) : null;
  const finish = (rows: TaskListItem[], edge: TaskKey | null): TaskPage => {
    const tasks = rows.slice(0, page.limit);
    const last = tasks.at(-1);
    if (rows.length > page.limit && last) return { tasks, nextCursor: encodeCursor(page, keyOf(last, page.sort)) };
    return { tasks, nextCursor: edge ? encodeCursor(page, edge) : null };
  };
  if (window === null) return finish(await store.queryTasks({ ...page, limit: want }), null);

  const { min, max } = await store.taskIdRange();
  const deadline = performance.now() + (tuning.budgetMs ?? PAGE_BUDGET_MS);
  const rows: TaskListItem[] = [];
  if (page.order === 'desc') {
    // Ids below `upper` are left to search.
    let upper = page.after ? page.after.id : max + 1;
    while (upper > min) {
      const lower = Math.max(min - 1, upper - window);
      rows.push(...(await store.queryTasks({ ...page, limit: want - rows.length, after: { id: upper, value: null }, idAbove: lower })));
      if (rows.length >= want) break;
      upper = lower + 1;
      if (performance.now() > deadline && upper > min) return finish(rows, { id: upper, value: null });
    }
  } else {
    // Ids above `lower` are left to search.
    let lower = page.after ? page.after.id : min - 1;
    while (lower < max) {
      const upper = Math.min(max + 1, lower + window + 1);
      rows.push(...(await store.queryTasks({ ...page, limit: want - rows.length, after: { id: lower, value: null }, idBelow: upper })));
      if (rows.length >= want) break;
      lower = upper - 1;
      if (performance.now() > deadline && lower < max) return finish(rows, { id: lower, value: null });
    }
  }
  return finish(rows, null);
}

export function keyOf(task: TaskListItem, sort: TaskPageRequest['sort']): TaskKey {
  if (sort === 'id') return { id: task.id, value: null };
  const at = sort === 'runAt' ? task.runAt : task.finishedAt;
  return { id: task.id, value: at ? at.getTime() : 0 };
}

export function checkCap(cap: unknown): number {
  if (cap === undefined) return DEFAULT_COUNT_CAP;
  if (!Number.isInteger(cap) || (cap as number) < 1 || (cap as number) > MAX_COUNT_CAP) {
    throw new InvalidInputError(`invalid cap ${JSON.stringify(cap)}: use a whole number from 1 to ${MAX_COUNT_CAP}.`);
  }
  return cap as number;
}

export function checkBulk(action: unknown, target: unknown): { action: BulkAction; target: BulkTarget } {
  if (action !== 'retry' && action !== 'cancel' && action !== 'delete') {
    throw new InvalidInputError(`invalid bulk action ${JSON.stringify(action)}: use retry, cancel or delete.`);
  }
  if (typeof target !== 'object' || target === null) {
    throw new InvalidInputError('a bulk action needs a target: { ids: [1, 2] } or { filter: { status: ["FAILED"] } }.');
  }
  const t = target as Record<string, unknown>;
  if ('ids' in t && 'filter' in t) throw new InvalidInputError('give a bulk action either "ids" or "filter", not both.');
  if ('ids' in t) {
    if (!Array.isArray(t.ids) || t.ids.length > MAX_BULK_IDS) {
      throw new InvalidInputError(`"ids" must be a list of at most ${MAX_BULK_IDS} task ids; for more, act on a filter.`);
    }
    for (const id of t.ids) {
      if (!Number.isSafeInteger(id) || (id as number) < 1) {
        throw new InvalidInputError(`invalid task id ${JSON.stringify(id)} in "ids": use positive whole numbers.`);
      }
    }
    return { action, target: { ids: [...new Set(t.ids as number[])] } };
  }
  if ('filter' in t) return { action, target: { filter: checkFilter(t.filter) } };
  throw new InvalidInputError('a bulk action needs "ids" (a list of task ids) or "filter" (as in query).');
}

type StepResult = 'changed' | 'skipped' | 'missing';

/** One task's action; a task that cannot take it is skipped, not an error. */
async function applyOne(store: Store, action: BulkAction, id: number, now: () => Date): Promise<StepResult> {
  try {
    if (action === 'retry') await store.retry(id, now());
    else if (action === 'cancel') await store.cancel(id, now());
    else await store.deleteTask(id);
    return 'changed';
  } catch (err) {
    if (err instanceof TaskNotFoundError) return 'missing';
    if (err instanceof InvalidTransitionError) return 'skipped';
    throw err;
  }
}

/**
 * Applies the action task by task, each in its own short transaction (so SQLite's write lock is never
 * held long and other writers and claims go on between them). By filter, it walks the tasks that
 * matched when it began in id order: ascending for retry and cancel (a prerequisite before the tasks
 * that wait for it), descending for delete (dependants first, so a chain can go as a whole).
 */
export async function runBulk(store: Store, action: BulkAction, target: BulkTarget, now: () => Date): Promise<BulkResult> {
  const result: BulkResult = { matched: 0, changed: 0 };
  const tally = (r: StepResult) => {
    if (r === 'missing') return;
    result.matched++;
    if (r === 'changed') result.changed++;
  };
  // PostgreSQL runs retries and cancels a few at a time (each waits a round trip and a commit; row locks
  // keep them apart, a deadlock between a task and its dependant is retried by the store). Deletes stay
  // one by one, newest first, so a chain is seen without its dependants.
  const parallel = store.engine === 'postgres' && action !== 'delete' ? BULK_PARALLEL : 1;
  const applyAll = async (ids: readonly number[]) => {
    for (let i = 0; i < ids.length; i += parallel) {
      const results = await Promise.all(ids.slice(i, i + parallel).map((id) => applyOne(store, action, id, now)));
      results.forEach(tally);
    }
  };
  if ('ids' in target) {
    await applyAll([...target.ids].sort((a, b) => (action === 'delete' ? b - a : a - b)));
    return result;
  }
  const filter = target.filter;
  // Tasks added after the action began are not part of it.
  const [newest] = await store.queryTasks({ filter, sort: 'id', order: 'desc', limit: 1, after: null });
  if (!newest) return result;
  const order = action === 'delete' ? 'desc' : 'asc';
  let after: TaskKey | null = order === 'desc' ? { id: newest.id + 1, value: null } : null;
  for (;;) {
    const page = await store.queryTasks({ filter, sort: 'id', order, limit: BULK_STEP, after });
    await applyAll(page.filter((t) => t.id <= newest.id).map((t) => t.id));
    const last = page.at(-1);
    if (!last || page.length < BULK_STEP || last.id > newest.id) return result;
    after = { id: last.id, value: null };
  }
}
