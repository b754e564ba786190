// The task list's filter as it lives in the URL (so every view can be shared) and as the client takes it.
import { TASK_STATUSES, type TaskStatus, isTaskStatus } from '../../model/task.js';
import type { TaskQuery, TaskQueryFilter } from '../../model/query.js';

/** The filter as text, exactly as the form and the URL carry it. */
export interface FilterParams {
  status: TaskStatus[];
  name: string;
  queue: string;
  schedule: string;
  from: string;
  to: string;
  q: string;
  sort: 'id' | 'runAt' | 'finishedAt';
  order: 'asc' | 'desc';
  limit: number;
}

export const PAGE_SIZES = [25, 50, 100, 200, 500] as const;
const SORTS = ['id', 'runAt', 'finishedAt'] as const;

type Query = Record<string, string | string[] | undefined>;

function one(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? (v[0] ?? '') : (v ?? '')).trim();
}

function many(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : v.split(',');
}

/** Reads the filter from a query string (or a form), ignoring what it cannot use. */
export function readFilter(query: Query): FilterParams {
  const status = many(query.status)
    .map((s) => s.trim().toUpperCase())
    .filter(isTaskStatus);
  const sort = one(query.sort);
  const limit = Number(one(query.limit));
  return {
    status: TASK_STATUSES.filter((s) => status.includes(s)),
    name: one(query.name),
    queue: one(query.queue),
    schedule: one(query.schedule),
    from: one(query.from),
    to: one(query.to),
    q: one(query.q),
    sort: (SORTS as readonly string[]).includes(sort) ? (sort as FilterParams['sort']) : 'id',
    order: one(query.order) === 'asc' ? 'asc' : 'desc',
    limit: (PAGE_SIZES as readonly number[]).includes(limit) ? limit : 50,
  };
}

/** A `datetime-local` value (or any ISO time) as UTC; null when empty or unreadable. */
function parseTime(text: string): Date | null {
  if (!text) return null;
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The filter part the client counts and bulk-applies to. */
export function toClientFilter(f: FilterParams): TaskQueryFilter {
  const out: TaskQueryFilter = {};
  if (f.status.length > 0) out.status = f.status;
  if (f.name) out.name = f.name.toLowerCase();
  if (f.queue) out.queue = f.queue;
  if (f.schedule) out.schedule = f.schedule;
  const from = parseTime(f.from);
  const to = parseTime(f.to);
  if (from) out.createdFrom = from;
  if (to) out.createdTo = to;
  if (f.q) out.text = f.q;
  return out;
}

export function toClientQuery(f: FilterParams, cursor: string | null): TaskQuery {
  return { ...toClientFilter(f), sort: f.sort, order: f.order, limit: f.limit, cursor };
}

/** True when the filter narrows anything (a bulk action on "everything" asks twice as loud). */
export function isFiltered(f: FilterParams): boolean {
  return Object.keys(toClientFilter(f)).length > 0;
}

/** The query string of a filter, defaults left out so URLs stay short. */
export function filterSearch(f: FilterParams, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  for (const s of f.status) p.append('status', s);
  for (const key of ['name', 'queue', 'schedule', 'from', 'to', 'q'] as const) if (f[key]) p.set(key, f[key]);
  if (f.sort !== 'id') p.set('sort', f.sort);
  if (f.order !== 'desc') p.set('order', f.order);
  if (f.limit !== 50) p.set('limit', String(f.limit));
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** The filter as hidden form fields (for the bulk forms that act on it). */
export function filterFields(f: FilterParams): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = f.status.map((s) => ({ name: 'status', value: s }));
  for (const key of ['name', 'queue', 'schedule', 'from', 'to', 'q'] as const) if (f[key]) out.push({ name: key, value: f[key] });
  return out;
}

/** A short description of the filter for confirmations: "status FAILED, name send-mail". */
export function describeFilter(f: FilterParams): string {
  const parts: string[] = [];
  if (f.status.length) parts.push(`status ${f.status.join(' or ')}`);
  if (f.name) parts.push(`name ${f.name}`);
  if (f.queue) parts.push(`queue ${f.queue}`);
  if (f.schedule) parts.push(`schedule ${f.schedule}`);
  if (f.from) parts.push(`created from ${f.from}`);
  if (f.to) parts.push(`created to ${f.to}`);
  if (f.q) parts.push(`text "${f.q}"`);
  return parts.length ? parts.join(', ') : 'no filter: every task';
}
