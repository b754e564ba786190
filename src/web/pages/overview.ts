// Overview: counts by status and queue, completed/failed per minute over the last hour, the daemons of
// the cluster and the latest failures. All of it is one live part, refreshed by the script.
import { html, type SafeHtml } from '../html.js';
import { TASK_STATUSES } from '../../model/task.js';
import { HEARTBEAT_STALE_MS } from '../../model/daemon.js';
import { throughputChart } from './chart.js';
import { formatDuration, jsonPreview, statusBadge, time } from './format.js';
import type { PageContext, PageResult } from './kit.js';
import { live, pageHead } from './layout.js';
import type { TaskListItem } from '../../model/query.js';

export async function overviewPage(ctx: PageContext): Promise<PageResult> {
  const [stats, daemons] = await Promise.all([ctx.mill.stats(), ctx.mill.daemons()]);
  const now = ctx.now;
  const total = TASK_STATUSES.reduce((s, st) => s + (stats.byStatus[st] ?? 0), 0);

  const cards = html`<ul class="cards" aria-label="Tasks by status">
  <li><a class="card" href="/tasks"><span class="card-label">All tasks</span><span class="card-value">${total.toLocaleString('en-US')}</span></a></li>
  ${TASK_STATUSES.map(
    (s) => html`<li><a class="card c-${s.toLowerCase()}" href="/tasks?status=${s}"><span class="card-label">${s.toLowerCase()}</span><span class="card-value" data-status-count="${s}">${(stats.byStatus[s] ?? 0).toLocaleString('en-US')}</span></a></li>`,
  )}
</ul>`;

  const queues = html`<section aria-labelledby="h-queues"><h2 id="h-queues">Queues</h2>${
    stats.byQueue.length === 0
      ? html`<p class="empty">No tasks yet.</p>`
      : html`<div class="table-wrap"><table class="dense"><thead><tr><th scope="col">Queue</th>${TASK_STATUSES.map((s) => html`<th scope="col" class="num">${s.toLowerCase()}</th>`)}</tr></thead><tbody>${stats.byQueue.map(
          (q) => html`<tr><th scope="row"><a href="/tasks?queue=${encodeURIComponent(q.queue)}">${q.queue}</a></th>${TASK_STATUSES.map((s) => {
            const n = q.counts[s] ?? 0;
            return html`<td class="num">${n ? html`<a href="/tasks?queue=${encodeURIComponent(q.queue)}&amp;status=${s}">${n.toLocaleString('en-US')}</a>` : html`<span class="muted">0</span>`}</td>`;
          })}</tr>`,
        )}</tbody></table></div>`
  }</section>`;

  const daemonRows = daemons.map((d) => {
    const stale = now.getTime() - d.lastSeen.getTime() > HEARTBEAT_STALE_MS;
    return html`<tr><td>${d.host}</td><td class="num">${d.pid}</td><td>${formatDuration(now.getTime() - d.startedAt.getTime())}</td><td>${time(d.lastSeen, now)} ${
      stale ? html`<span class="badge s-failed">stale</span>` : html`<span class="badge s-completed">alive</span>`
    }</td></tr>`;
  });
  const daemonTable = html`<section aria-labelledby="h-daemons"><h2 id="h-daemons">Daemons</h2>${
    daemons.length === 0
      ? html`<p class="empty">No daemon has sent a heartbeat.</p>`
      : html`<div class="table-wrap"><table class="dense"><thead><tr><th scope="col">Host</th><th scope="col" class="num">PID</th><th scope="col">Uptime</th><th scope="col">Last heartbeat</th></tr></thead><tbody>${daemonRows}</tbody></table></div>`
  }<p class="more"><a href="/daemon">Modules and summaries →</a></p></section>`;

  const failures = html`<section aria-labelledby="h-failures"><h2 id="h-failures">Latest failures</h2>${failureTable(stats.latestFailures, ctx)}<p class="more"><a href="/tasks?status=FAILED">All failed tasks →</a></p></section>`;

  const region = html`${cards}
<section aria-labelledby="h-chart" class="panel"><h2 id="h-chart">Throughput</h2>${throughputChart(stats.perMinute)}</section>
<div class="grid-2">${queues}${daemonTable}</div>
${failures}`;
  return {
    title: 'Overview',
    nav: 'overview',
    body: html`${pageHead('Overview')}${live('overview', region)}`,
    regions: { overview: region },
  };
}

function failureTable(tasks: readonly TaskListItem[], ctx: PageContext): SafeHtml {
  if (tasks.length === 0) return html`<p class="empty">No failed tasks.</p>`;
  return html`<div class="table-wrap"><table class="dense"><thead><tr><th scope="col" class="num">ID</th><th scope="col">Name</th><th scope="col">Error</th><th scope="col">Finished</th></tr></thead><tbody>${tasks.map(
    (t) => html`<tr><td class="num"><a href="/tasks/${t.id}">${t.id}</a></td><td><a href="/tasks/${t.id}">${t.name}</a> ${statusBadge(t.status)}</td><td class="clip" title="${t.error ?? ''}">${t.error ?? jsonPreview(t.payload)}</td><td>${time(t.finishedAt, ctx.now)}</td></tr>`,
  )}</tbody></table></div>`;
}
