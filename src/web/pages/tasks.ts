// Tasks: the filterable, sortable list (keyset pages, every filter in the URL), and the bulk actions on
// the selected rows or on everything the filter matches (after a confirmation giving the count).
import type { FastifyInstance } from 'fastify';
import { html, type SafeHtml } from '../html.js';
import { InvalidInputError } from '../../model/errors.js';
import { TASK_STATUSES } from '../../model/task.js';
import { requireAdmin } from '../auth/roles.js';
import type { WebDeps } from '../types.js';
import {
  type FilterParams,
  PAGE_SIZES,
  describeFilter,
  filterFields,
  filterSearch,
  isFiltered,
  readFilter,
  toClientFilter,
  toClientQuery,
} from './filters.js';
import { jsonPreview, plural, progressBar, statusBadge, time } from './format.js';
import { type PageContext, type PageResult, context, errorText, field, fields, page, redirectWithFlash } from './kit.js';
import { VIEWER_REASON, csrfField, live, pageHead, safeBack } from './layout.js';
import type { TaskListItem } from '../../model/query.js';

/** Counting stops here: past it the page says "10,000+" (counting millions would cost seconds). */
export const COUNT_CAP = 10_000;
const ACTIONS = ['retry', 'cancel', 'delete'] as const;
type BulkAction = (typeof ACTIONS)[number];

function countText(n: number): string {
  return n >= COUNT_CAP ? `${COUNT_CAP.toLocaleString('en-US')}+` : n.toLocaleString('en-US');
}

export function registerTaskList(app: FastifyInstance, deps: WebDeps): void {
  page(app, deps, '/tasks', tasksPage);

  // The confirmation of an action on everything the filter matches: the count, then one button.
  page(app, deps, '/tasks/bulk', async (ctx) => {
    const f = readFilter(ctx.query);
    const action = field(ctx.query, 'action') as BulkAction;
    if (!ACTIONS.includes(action)) return { title: 'Bulk action', nav: 'tasks', status: 400, body: html`${pageHead('Bulk action')}<p>Unknown action; use retry, cancel or delete.</p>` };
    const n = await ctx.mill.count(toClientFilter(f), COUNT_CAP);
    const verb = action[0]?.toUpperCase() + action.slice(1);
    const back = `/tasks${filterSearch(f)}`;
    const admin = ctx.principal.role === 'admin';
    return {
      title: `${verb} matching tasks`,
      nav: 'tasks',
      body: html`${pageHead(`${verb} every matching task?`)}
<div class="panel confirm">
  <p>The filter (<strong>${describeFilter(f)}</strong>) matches <strong data-testid="bulk-count">${plural(n, 'task')}</strong>${n >= COUNT_CAP ? ' or more' : ''}.</p>
  <p>${action === 'retry' ? 'Failed and cancelled ones go back to WAITING with a fresh attempt budget' : action === 'cancel' ? 'Waiting ones are cancelled; running ones are asked to stop' : 'They are deleted for good; running ones are skipped (cancel them first)'}; tasks that cannot take the action are left as they are.</p>
  ${isFiltered(f) ? '' : html`<p class="warn"><strong>There is no filter:</strong> this acts on every task in the database.</p>`}
  <form method="post" action="/tasks/bulk" class="row">
    ${csrfField(ctx.csrf)}<input type="hidden" name="action" value="${action}"><input type="hidden" name="scope" value="filter"><input type="hidden" name="back" value="${back}">
    ${filterFields(f).map((x) => html`<input type="hidden" name="${x.name}" value="${x.value}">`)}
    <button type="submit" class="btn ${action === 'retry' ? 'primary' : 'danger'}"${admin ? '' : html` disabled title="${VIEWER_REASON}"`}>${verb} ${plural(n, 'task')}${n >= COUNT_CAP ? '+' : ''}</button>
    <a class="btn plain" href="${back}">Back to the list</a>
  </form>
</div>`,
    };
  });

  app.post('/tasks/bulk', { preHandler: requireAdmin }, async (request, reply) => {
    const body = request.body;
    const action = field(body, 'action') as BulkAction;
    const back = safeBack(field(body, 'back'), '/tasks');
    if (!ACTIONS.includes(action)) return redirectWithFlash(reply, back, { kind: 'error', text: 'Unknown action; use retry, cancel or delete.' });
    try {
      let r: { matched: number; changed: number };
      if (field(body, 'scope') === 'filter') {
        r = await context(deps, request, reply).mill.bulk(action, { filter: toClientFilter(readFilter(body as Record<string, string>)) });
      } else {
        const ids = fields(body, 'id').map(Number).filter((n) => Number.isSafeInteger(n) && n > 0);
        if (ids.length === 0) return redirectWithFlash(reply, back, { kind: 'error', text: 'Select at least one task first (the boxes on the left).' });
        r = await context(deps, request, reply).mill.bulk(action, { ids });
      }
      const past = action === 'retry' ? 'retried' : action === 'cancel' ? 'cancelled' : 'deleted';
      const skipped = r.matched - r.changed;
      return redirectWithFlash(reply, back, {
        kind: 'ok',
        text: `${plural(r.changed, 'task')} ${past}${skipped > 0 ? `; ${plural(skipped, 'task')} could not be ${past} and ${skipped === 1 ? 'was' : 'were'} left as ${skipped === 1 ? 'it was' : 'they were'}` : ''}.`,
      });
    } catch (err) {
      return redirectWithFlash(reply, back, { kind: 'error', text: errorText(deps, err) });
    }
  });
}

async function tasksPage(ctx: PageContext): Promise<PageResult> {
  const f = readFilter(ctx.query);
  const cursor = typeof ctx.query.cursor === 'string' && ctx.query.cursor ? ctx.query.cursor : null;
  let region: SafeHtml;
  try {
    const [{ tasks, nextCursor }, n] = await Promise.all([ctx.mill.query(toClientQuery(f, cursor)), ctx.mill.count(toClientFilter(f), COUNT_CAP)]);
    region = listRegion(ctx, f, tasks, nextCursor, cursor, n);
  } catch (err) {
    // A filter the client refuses (a malformed name, a stale cursor) is said above the list, the form kept.
    if (!(err instanceof InvalidInputError)) throw err;
    region = html`<p class="flash flash-error" role="alert">${err.message} <a href="/tasks">Clear the filter</a></p>`;
  }
  const admin = ctx.principal.role === 'admin';
  const dis = admin ? html`` : html` disabled title="${VIEWER_REASON}"`;
  const search = filterSearch(f);
  return {
    title: 'Tasks',
    nav: 'tasks',
    body: html`${pageHead('Tasks', html`<a class="btn primary" href="/tasks/new">Add task</a>`)}
${filterForm(ctx, f)}
<form id="bulk" method="post" action="/tasks/bulk" class="bulk-bar" aria-label="Actions on the selected tasks">
  ${csrfField(ctx.csrf)}<input type="hidden" name="scope" value="ids"><input type="hidden" name="back" value="${`/tasks${search}`}">
  <span class="bulk-label">Selected <output data-selected-count>0</output>:</span>
  <button type="submit" name="action" value="retry" class="btn plain"${dis}>Retry</button>
  <button type="submit" name="action" value="cancel" class="btn plain"${dis}>Cancel</button>
  <button type="submit" name="action" value="delete" class="btn danger" data-confirm="Delete the selected tasks for good?"${dis}>Delete</button>
  <span class="bulk-sep" aria-hidden="true"></span>
  <span class="bulk-label">All matching:</span>
  ${(['retry', 'cancel', 'delete'] as const).map((a) =>
    admin
      ? html`<a class="btn plain" href="/tasks/bulk${filterSearch(f, { action: a })}">${a[0]?.toUpperCase()}${a.slice(1)} all…</a>`
      : html`<button type="button" class="btn plain" disabled title="${VIEWER_REASON}">${a[0]?.toUpperCase()}${a.slice(1)} all…</button>`,
  )}
</form>
${live('tasks', region)}`,
    regions: { tasks: region },
  };
}

function filterForm(ctx: PageContext, f: FilterParams): SafeHtml {
  const names = ctx.mill.taskNames();
  return html`<form method="get" action="/tasks" class="filters" role="search" aria-label="Filter tasks">
  <fieldset class="statuses"><legend>Status</legend>${TASK_STATUSES.map(
    (s) => html`<label class="chip"><input type="checkbox" name="status" value="${s}"${f.status.includes(s) ? ' checked' : ''}> ${s.toLowerCase()}</label>`,
  )}</fieldset>
  <div class="filter-fields">
    <label>Name <input name="name" value="${f.name}" list="task-names" autocomplete="off" spellcheck="false"></label>
    <datalist id="task-names">${names.map((n) => html`<option value="${n}">`)}</datalist>
    <label>Queue <input name="queue" value="${f.queue}" spellcheck="false"></label>
    <label>Schedule <input name="schedule" value="${f.schedule}" spellcheck="false"></label>
    <label>Created from <input type="datetime-local" name="from" value="${f.from}" step="1"></label>
    <label>to <input type="datetime-local" name="to" value="${f.to}" step="1"></label>
    <label class="grow">Text <input type="search" name="q" value="${f.q}" placeholder="in payload, note or error"></label>
    <label>Sort <select name="sort">${(
      [
        ['id', 'created'],
        ['runAt', 'run at'],
        ['finishedAt', 'finished'],
      ] as const
    ).map(([v, l]) => html`<option value="${v}"${f.sort === v ? ' selected' : ''}>${l}</option>`)}</select></label>
    <label>Order <select name="order"><option value="desc"${f.order === 'desc' ? ' selected' : ''}>newest first</option><option value="asc"${f.order === 'asc' ? ' selected' : ''}>oldest first</option></select></label>
    <label>Rows <select name="limit">${PAGE_SIZES.map((n) => html`<option${f.limit === n ? ' selected' : ''}>${n}</option>`)}</select></label>
    <div class="filter-buttons"><button type="submit" class="btn primary">Filter</button><a class="btn plain" href="/tasks">Clear</a></div>
  </div>
  <p class="hint">Times are UTC.</p>
</form>`;
}

function listRegion(ctx: PageContext, f: FilterParams, tasks: TaskListItem[], nextCursor: string | null, cursor: string | null, n: number): SafeHtml {
  const sortLink = (key: FilterParams['sort'], label: string) => {
    const active = f.sort === key;
    const order = active && f.order === 'desc' ? 'asc' : 'desc';
    return html`<a href="/tasks${filterSearch({ ...f, sort: key, order })}" class="sort"${active ? html` aria-sort="${f.order === 'desc' ? 'descending' : 'ascending'}"` : ''}>${label}${active ? (f.order === 'desc' ? ' ↓' : ' ↑') : ''}</a>`;
  };
  const rows = tasks.map(
    (t) => html`<tr data-task-id="${t.id}" data-status="${t.status}">
<td class="check"><input type="checkbox" name="id" value="${t.id}" form="bulk" aria-label="Select task ${t.id}"></td>
<td class="num"><a href="/tasks/${t.id}">${t.id}</a></td>
<td><a href="/tasks/${t.id}" class="name">${t.name}</a>${t.note ? html`<div class="sub clip" title="${t.note}">${t.note}</div>` : ''}</td>
<td>${statusBadge(t.status, t.cancelRequested)}${t.status === 'STARTED' ? progressBar(t.progress, true) : ''}</td>
<td><a href="/tasks?queue=${encodeURIComponent(t.queue)}">${t.queue}</a></td>
<td class="payload clip"><code title="${jsonPreview(t.payload, 500)}">${jsonPreview(t.payload)}</code>${t.error ? html`<div class="sub err clip" title="${t.error}">${t.error}</div>` : ''}</td>
<td class="num">${t.attempts}/${t.maxAttempts}</td>
<td>${time(t.createdAt, ctx.now)}</td>
<td>${t.status === 'WAITING' ? time(t.runAt, ctx.now) : t.finishedAt ? time(t.finishedAt, ctx.now) : t.startedAt ? time(t.startedAt, ctx.now) : html`<span class="muted">–</span>`}</td>
</tr>`,
  );
  const search = filterSearch(f);
  return html`<p class="count"><strong data-testid="match-count">${countText(n)}</strong> ${n === 1 ? 'task matches' : 'tasks match'}${cursor ? ' · a later page' : ''}</p>
<div class="table-wrap"><table class="dense tasks">
<caption class="sr-only">Tasks, ${f.sort === 'id' ? 'by creation' : f.sort === 'runAt' ? 'by run time' : 'by finish time'}, ${f.order === 'desc' ? 'newest first' : 'oldest first'}</caption>
<thead><tr><th scope="col" class="check"><input type="checkbox" data-select-all aria-label="Select every task on this page"></th><th scope="col" class="num">${sortLink('id', 'ID')}</th><th scope="col">Name</th><th scope="col">Status</th><th scope="col">Queue</th><th scope="col">Payload / error</th><th scope="col" class="num" title="attempts made / allowed">Tries</th><th scope="col">Created</th><th scope="col">${sortLink('runAt', 'Run at')} / ${sortLink('finishedAt', 'finished')}</th></tr></thead>
<tbody>${rows.length ? rows : html`<tr><td colspan="9" class="empty">No task matches${isFiltered(f) ? html` this filter. <a href="/tasks">Clear it</a>` : html`. <a href="/tasks/new">Add one</a>`}.</td></tr>`}</tbody>
</table></div>
<nav class="pager" aria-label="Pages">${cursor ? html`<a class="btn plain" href="/tasks${search}">← First page</a>` : html`<span></span>`}${
    nextCursor ? html`<a class="btn plain" rel="next" href="/tasks${filterSearch(f, { cursor: nextCursor })}">Next page →</a>` : html`<span class="muted">End of the list</span>`
  }</nav>`;
}
