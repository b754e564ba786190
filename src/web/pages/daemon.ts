// Daemon: the daemons of the cluster (from their heartbeats) with each module's pid, state, loops,
// restarts and last error; and each module's summary tables, as `taskmill summary` prints them, when
// the daemon of this installation runs on this host (summaries travel over its control socket only).
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { html, type SafeHtml } from '../html.js';
import { askDaemon } from '../../daemon/control-socket.js';
import type { ModuleSummary } from '../../daemon/module.js';
import { findDaemon } from '../../daemon/pid-file.js';
import { HEARTBEAT_STALE_MS } from '../../model/daemon.js';
import type { WebDeps } from '../types.js';
import { formatDuration, formatTime, time } from './format.js';
import { type PageContext, page } from './kit.js';
import { live, pageHead } from './layout.js';

/** How long the page waits for the modules' summaries before it shows the heartbeat alone. */
const SUMMARY_TIMEOUT_MS = 3_000;

interface ModuleRow {
  name: string;
  pid: number | null;
  state: string;
  loops: number;
  restarts: number;
  lastError: string | null;
  startedAt: string | null;
}

/** The heartbeat's modules (JSON written by the supervisor), read defensively. */
function moduleRows(modules: unknown): ModuleRow[] {
  if (!Array.isArray(modules)) return [];
  return modules.flatMap((m) => {
    if (!m || typeof m !== 'object') return [];
    const o = m as Record<string, unknown>;
    return [
      {
        name: String(o.name ?? '?'),
        pid: typeof o.pid === 'number' ? o.pid : null,
        state: String(o.state ?? '?'),
        loops: typeof o.loops === 'number' ? o.loops : 0,
        restarts: typeof o.restarts === 'number' ? o.restarts : 0,
        lastError: typeof o.lastError === 'string' ? o.lastError : null,
        startedAt: typeof o.startedAt === 'string' ? o.startedAt : null,
      },
    ];
  });
}

const STATE_CLASS: Record<string, string> = { running: 's-completed', crashed: 's-failed', restarting: 's-waiting', stopping: 's-cancelled' };

function modulesTable(rows: ModuleRow[], now: Date): SafeHtml {
  if (rows.length === 0) return html`<p class="empty">This daemon reported no modules.</p>`;
  return html`<div class="table-wrap"><table class="dense"><thead><tr><th scope="col">Module</th><th scope="col" class="num">PID</th><th scope="col">State</th><th scope="col" class="num">Loops</th><th scope="col" class="num">Restarts</th><th scope="col">Up for</th><th scope="col">Last error</th></tr></thead><tbody>${rows.map(
    (m) => html`<tr><th scope="row">${m.name}</th><td class="num">${m.pid ?? '–'}</td><td><span class="badge ${STATE_CLASS[m.state] ?? 's-info'}">${m.state}</span></td><td class="num">${m.loops.toLocaleString('en-US')}</td><td class="num">${m.restarts}</td><td>${m.startedAt ? formatDuration(now.getTime() - new Date(m.startedAt).getTime()) : html`<span class="muted">–</span>`}</td><td class="clip err-cell" title="${m.lastError ?? ''}">${m.lastError ? html`<span class="sub err">${m.lastError}</span>` : html`<span class="muted">none</span>`}</td></tr>`,
  )}</tbody></table></div>`;
}

function summaryTables(all: { module: string; summaries: ModuleSummary[] }[]): SafeHtml {
  const tables = all.flatMap(({ module, summaries }) =>
    summaries.map(
      (s) => html`<section class="panel summary"><h3>${module}: ${s.header}</h3>${
        s.rows.length === 0
          ? html`<p class="muted">${s.noDataMessage}</p>`
          : html`<div class="table-wrap"><table class="dense summary-table"><thead><tr>${s.columns.map((c) => html`<th scope="col">${c.displayName}</th>`)}</tr></thead><tbody>${s.rows.map(
              (r) => html`<tr>${s.columns.map((c) => html`<td>${r[c.name] ?? '–'}</td>`)}</tr>`,
            )}</tbody></table></div>`
      }</section>`,
    ),
  );
  return tables.length ? html`<div class="module-grid">${tables}</div>` : html`<p class="empty">No module has a summary.</p>`;
}

async function localSummaries(ctx: PageContext): Promise<SafeHtml> {
  const varDir = ctx.deps.config.varDir;
  let pid: number | null = null;
  try {
    pid = (await findDaemon(varDir)).pid;
  } catch (err) {
    return html`<p class="muted">Could not look for the daemon's pid file: ${(err as Error).message}</p>`;
  }
  if (pid === null) {
    return html`<p class="muted">No daemon of this installation runs on this host (${hostname()}): summaries come from the daemon's control socket in <code>${varDir}</code> on the host it runs on; the heartbeats above are what every host reports.</p>`;
  }
  try {
    const all = await askDaemon<{ module: string; summaries: ModuleSummary[] }[]>(varDir, 'summary', SUMMARY_TIMEOUT_MS);
    return html`<p class="hint">From the daemon on this host (pid ${pid}), as <code>taskmill summary</code> prints them.</p>${summaryTables(all)}`;
  } catch (err) {
    return html`<p class="muted">The daemon (pid ${pid}) did not answer with its summaries: ${(err as Error).message}</p>`;
  }
}

export function registerDaemon(app: FastifyInstance, deps: WebDeps): void {
  page(app, deps, '/daemon', async (ctx, request) => {
    const live_ = request.headers['x-live'] === '1';
    const [daemons, summaries] = await Promise.all([ctx.mill.daemons(), live_ ? Promise.resolve(html``) : localSummaries(ctx)]);
    const now = ctx.now;
    const region = daemons.length
      ? html`${daemons.map((d) => {
          const stale = now.getTime() - d.lastSeen.getTime() > HEARTBEAT_STALE_MS;
          return html`<section class="daemon" aria-label="Daemon on ${d.host}">
<h2>${d.host} <span class="muted">pid ${d.pid}</span> ${stale ? html`<span class="badge s-failed">stale: no heartbeat for ${formatDuration(now.getTime() - d.lastSeen.getTime())}</span>` : html`<span class="badge s-completed">alive</span>`}</h2>
<p class="sub">Started ${formatTime(d.startedAt)} UTC (up ${formatDuration(now.getTime() - d.startedAt.getTime())}) · last heartbeat ${time(d.lastSeen, now)}</p>
${modulesTable(moduleRows(d.modules), now)}
</section>`;
        })}`
      : html`<p class="empty">No daemon has sent a heartbeat to this database.</p>`;
    return {
      title: 'Daemon',
      nav: 'daemon',
      body: html`${pageHead('Daemon')}${live('daemons', region)}<section aria-labelledby="h-summaries"><h2 id="h-summaries">Module summaries</h2>${summaries}</section>`,
      regions: { daemons: region },
    };
  });
}
