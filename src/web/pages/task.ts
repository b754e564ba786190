// Task detail: every field, payload and result as formatted JSON (large ones cut, with the whole of it
// one click away), output, error and stack, prerequisites and dependants, progress; and its actions.
import type { FastifyInstance } from 'fastify';
import { html, type SafeHtml } from '../html.js';
import type { Json, Task } from '../../model/task.js';
import { requireAdmin } from '../auth/roles.js';
import type { WebDeps } from '../types.js';
import { formatDuration, formatJson, formatTime, plural, progressBar, statusBadge, time } from './format.js';
import { type PageContext, type PageResult, context, errorText, page, redirectWithFlash } from './kit.js';
import { actionButton, live, pageHead, safeBack } from './layout.js';
import type { TaskListItem } from '../../model/query.js';

/** Characters of JSON shown inline; the rest is behind "show all". */
export const JSON_INLINE_LIMIT = 20_000;
/** Output lines shown inline (the newest). */
const OUTPUT_INLINE_LINES = 300;

function taskId(raw: string): number | null {
  const id = Number(raw);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

export function registerTaskDetail(app: FastifyInstance, deps: WebDeps): void {
  page(app, deps, '/tasks/:id', async (ctx, request) => {
    const id = taskId((request.params as { id: string }).id);
    const task = id === null ? null : await ctx.mill.get(id);
    if (!task) {
      return { title: 'No such task', nav: 'tasks', status: 404, body: html`${pageHead('No such task')}<p>There is no task ${id ?? ''} (it may have been deleted). <a href="/tasks">Back to the list</a></p>` };
    }
    const dependants = await ctx.mill.dependants(task.id);
    return detail(ctx, task, dependants);
  });

  // The whole payload or result, as JSON the browser shows as text (never as markup).
  for (const part of ['payload', 'result'] as const) {
    app.get<{ Params: { id: string } }>(`/tasks/:id/${part}.json`, async (request, reply) => {
      const id = taskId(request.params.id);
      const task = id === null ? null : await context(deps, request, reply).mill.get(id);
      if (!task) return reply.code(404).type('text/plain; charset=utf-8').send('no such task');
      return reply
        .header('cache-control', 'no-store')
        .header('content-disposition', `inline; filename="task-${task.id}-${part}.json"`)
        .type('application/json; charset=utf-8')
        .send(JSON.stringify(part === 'payload' ? task.payload : task.result, null, 2));
    });
  }

  for (const action of ['retry', 'cancel', 'delete'] as const) {
    app.post<{ Params: { id: string } }>(`/tasks/:id/${action}`, { preHandler: requireAdmin }, async (request, reply) => {
      const id = taskId(request.params.id);
      const back = safeBack((request.body as Record<string, unknown> | undefined)?.back, id ? `/tasks/${id}` : '/tasks');
      if (id === null) return redirectWithFlash(reply, '/tasks', { kind: 'error', text: 'Not a task id.' });
      const mill = context(deps, request, reply).mill;
      try {
        if (action === 'retry') await mill.retry(id);
        else if (action === 'cancel') await mill.cancel(id);
        else await mill.delete(id);
      } catch (err) {
        return redirectWithFlash(reply, back, { kind: 'error', text: errorText(deps, err) });
      }
      const text = action === 'retry' ? `Task ${id} is waiting to run again.` : action === 'cancel' ? `Task ${id} cancelled (a running one stops as soon as its handler lets go).` : `Task ${id} deleted.`;
      return redirectWithFlash(reply, action === 'delete' ? '/tasks' : back, { kind: 'ok', text });
    });
  }
}

function jsonBlock(ctx: PageContext, task: Task, part: 'payload' | 'result', value: Json | null): SafeHtml {
  const f = formatJson(value, JSON_INLINE_LIMIT);
  return html`<pre class="json" data-testid="${part}">${f.text}</pre>${
    f.truncated ? html`<p class="hint">Showing the first ${JSON_INLINE_LIMIT.toLocaleString('en-US')} of ${f.size.toLocaleString('en-US')} characters. <a href="/tasks/${task.id}/${part}.json">Show all</a></p>` : ''
  }`;
}

/**
 * A stack as people read it: a frame inside a module loaded from a data: URL (how TypeScript handlers
 * are loaded at run time) names the file it came from instead of kilobytes of encoded source.
 */
export function readableStack(stack: string): string {
  return stack
    .split('\n')
    .map((line) => {
      const at = line.indexOf('data:text/javascript');
      if (at < 0) return line;
      const rest = line.slice(at);
      const position = /(:\d+:\d+)\)?\s*$/.exec(rest)?.[1] ?? '';
      const encoded = /filePath=([^&\s]+)/.exec(rest)?.[1];
      let file = 'data:…';
      if (encoded) {
        try {
          file = decodeURIComponent(encoded).replace(/[?#].*$/s, '');
        } catch {
          // not decodable: keep the placeholder
        }
      }
      return `${line.slice(0, at)}${file}${position}${rest.trimEnd().endsWith(')') ? ')' : ''}`;
    })
    .join('\n');
}

function idLinks(ids: readonly number[]): SafeHtml {
  return ids.length ? html`${ids.map((id, i) => html`${i ? ', ' : ''}<a href="/tasks/${id}">#${id}</a>`)}` : html`<span class="muted">none</span>`;
}

function detail(ctx: PageContext, task: Task, dependants: TaskListItem[]): PageResult {
  const now = ctx.now;
  const back = `/tasks/${task.id}`;
  const canRetry = task.status === 'FAILED' || task.status === 'CANCELLED';
  const canCancel = task.status === 'WAITING' || task.status === 'STARTED';
  const actions = html`${actionButton({ action: `/tasks/${task.id}/retry`, label: 'Retry', csrf: ctx.csrf, principal: ctx.principal, back, kind: 'primary', disabledReason: canRetry ? null : `Only a failed or cancelled task can be retried; this one is ${task.status}.` })}
${actionButton({ action: `/tasks/${task.id}/cancel`, label: task.cancelRequested ? 'Cancelling…' : 'Cancel', csrf: ctx.csrf, principal: ctx.principal, back, disabledReason: canCancel && !task.cancelRequested ? null : task.cancelRequested ? 'A cancel was asked for; the handler is stopping.' : `Only a waiting or running task can be cancelled; this one is ${task.status}.` })}
${actionButton({ action: `/tasks/${task.id}/delete`, label: 'Delete', csrf: ctx.csrf, principal: ctx.principal, kind: 'danger', confirm: `Delete task ${task.id} for good?`, disabledReason: task.status === 'STARTED' ? 'A running task cannot be deleted: cancel it first.' : null })}
<a class="btn plain" href="/tasks/new?from=${task.id}">Add again…</a>`;

  const duration = task.startedAt && task.finishedAt ? formatDuration(task.finishedAt.getTime() - task.startedAt.getTime()) : null;
  const fields = html`<dl class="fields">
<dt>Status</dt><dd>${statusBadge(task.status, task.cancelRequested)}</dd>
<dt>Name</dt><dd><a href="/tasks?name=${encodeURIComponent(task.name)}">${task.name}</a></dd>
<dt>Queue</dt><dd><a href="/tasks?queue=${encodeURIComponent(task.queue)}">${task.queue}</a></dd>
<dt>Priority</dt><dd>${task.priority}</dd>
<dt>Attempts</dt><dd>${task.attempts} of ${task.maxAttempts} <span class="muted">(backoff ${formatDuration(task.backoff.baseMs)}, doubling, at most ${formatDuration(task.backoff.maxMs)})</span></dd>
<dt>Timeout</dt><dd>${formatDuration(task.timeoutMs)}</dd>
<dt>Created</dt><dd>${formatTime(task.createdAt)} UTC <span class="muted">· ${time(task.createdAt, now)}</span></dd>
<dt>Run at</dt><dd>${formatTime(task.runAt)} UTC <span class="muted">· ${time(task.runAt, now)}</span></dd>
<dt>Started</dt><dd>${task.startedAt ? html`${formatTime(task.startedAt)} UTC <span class="muted">· ${time(task.startedAt, now)}</span>` : html`<span class="muted">–</span>`}</dd>
<dt>Finished</dt><dd>${task.finishedAt ? html`${formatTime(task.finishedAt)} UTC <span class="muted">· ${time(task.finishedAt, now)}${duration ? ` · took ${duration}` : ''}</span>` : html`<span class="muted">–</span>`}</dd>
<dt>Running on</dt><dd>${task.lockedBy ? html`${task.lockedBy.host} pid ${task.lockedBy.pid} <span class="muted">(worker ${task.lockedBy.workerId}${task.leaseExpiresAt ? html`, lease until ${formatTime(task.leaseExpiresAt)} UTC` : ''})</span>` : html`<span class="muted">–</span>`}</dd>
<dt>Prerequisites</dt><dd>${idLinks(task.prerequisites)}</dd>
<dt>Dependants</dt><dd>${dependants.length ? html`${dependants.map((d, i) => html`${i ? ', ' : ''}<a href="/tasks/${d.id}">#${d.id}</a> ${statusBadge(d.status)}`)}` : html`<span class="muted">none</span>`}</dd>
<dt>Unique key</dt><dd>${task.uniqueKey ?? html`<span class="muted">–</span>`}</dd>
<dt>Schedule</dt><dd>${task.scheduleName ? html`<a href="/schedules#schedule-${task.scheduleName}">${task.scheduleName}</a>${task.scheduledFor ? html` <span class="muted">for ${formatTime(task.scheduledFor)} UTC</span>` : ''}` : html`<span class="muted">–</span>`}</dd>
<dt>Note</dt><dd>${task.note ?? html`<span class="muted">–</span>`}</dd>
</dl>`;

  const output = task.output.length
    ? html`<pre class="output" data-testid="output">${task.output.slice(-OUTPUT_INLINE_LINES).join('\n')}</pre>${task.output.length > OUTPUT_INLINE_LINES ? html`<p class="hint">The newest ${OUTPUT_INLINE_LINES} of ${plural(task.output.length, 'line')}.</p>` : ''}`
    : html`<p class="empty">No output.</p>`;

  const region = html`${pageHead(html`Task <span class="muted">#${task.id}</span> ${task.name}`, actions, html`<div class="sub">${statusBadge(task.status, task.cancelRequested)} ${progressBar(task.progress)}</div>`)}
${task.progress ? html`<section class="panel" aria-labelledby="h-progress"><h2 id="h-progress">Progress</h2><div class="big-progress" data-testid="progress">${progressBar(task.progress)}</div><p class="hint">Reported ${time(task.progress.at, now)}.</p></section>` : ''}
<div class="detail">
  <section class="panel" aria-labelledby="h-fields"><h2 id="h-fields">Fields</h2>${fields}</section>
  <div>
    ${task.error || task.errorStack ? html`<section aria-labelledby="h-error"><h2 id="h-error">Error</h2><pre class="error-text" data-testid="error">${readableStack(task.errorStack ?? task.error ?? '')}</pre></section>` : ''}
    <section aria-labelledby="h-payload"><h2 id="h-payload">Payload</h2>${jsonBlock(ctx, task, 'payload', task.payload)}</section>
    <section aria-labelledby="h-result"><h2 id="h-result">Result</h2>${task.result === null && task.status !== 'COMPLETED' ? html`<p class="empty">No result yet.</p>` : jsonBlock(ctx, task, 'result', task.result)}</section>
    <section aria-labelledby="h-output"><h2 id="h-output">Output</h2>${output}</section>
  </div>
</div>`;
  return { title: `Task ${task.id} · ${task.name}`, nav: 'tasks', body: live('task', region), regions: { task: region } };
}
