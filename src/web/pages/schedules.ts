// Schedules: each with its rule, zone, last run, last skip and why, and the next three runs; add, edit,
// pause, resume, run now and delete those made through the API, CLI or page. Config schedules are
// read-only here: they come from the config file, which wins at the next reconcile.
import type { FastifyInstance } from 'fastify';
import { html, type SafeHtml } from '../html.js';
import type { ScheduleInfo } from '../../client/taskmill.js';
import { CATCH_UP_POLICIES, OVERLAP_POLICIES } from '../../model/schedule.js';
import type { ScheduleSpec } from '../../scheduler/reconcile.js';
import { requireAdmin } from '../auth/roles.js';
import type { WebDeps } from '../types.js';
import { formatDuration, formatTime, time } from './format.js';
import { type PageContext, type PageResult, context, errorText, field, page, redirectWithFlash } from './kit.js';
import { VIEWER_REASON, actionButton, csrfField, layout, live, pageHead } from './layout.js';
import { daemonNotice } from './notice.js';

interface ScheduleValues {
  name: string;
  task: string;
  payload: string;
  kind: 'every' | 'cron';
  every: string;
  cron: string;
  timezone: string;
  catchUp: string;
  overlap: string;
  enabled: boolean;
}

export function ruleText(s: ScheduleInfo): string {
  return s.rule.kind === 'every' ? `every ${formatDuration(s.rule.everyMs)}` : s.rule.expression;
}

/** An interval as the form (and parseDuration) reads it back exactly. */
function durationInput(ms: number): string {
  for (const [unit, size] of [['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1000]] as const) {
    if (ms % size === 0) return `${ms / size} ${unit}${ms === size ? '' : 's'}`;
  }
  return `${ms}ms`;
}

function fromFile(ctx: PageContext): string {
  return `It comes from the config file${ctx.deps.config.file ? ` (${ctx.deps.config.file})` : ''}: change it there.`;
}

export function registerSchedules(app: FastifyInstance, deps: WebDeps): void {
  page(app, deps, '/schedules', async (ctx) => {
    const region = scheduleTable(ctx, await ctx.mill.schedules());
    const admin = ctx.principal.role === 'admin';
    return {
      title: 'Schedules',
      nav: 'schedules',
      body: html`${pageHead('Schedules', admin ? html`<a class="btn primary" href="/schedules/new">Add schedule</a>` : html`<button type="button" class="btn primary" disabled title="${VIEWER_REASON}">Add schedule</button>`)}${live('schedules', region)}`,
      regions: { schedules: region },
    };
  });

  page(app, deps, '/schedules/new', async (ctx) =>
    scheduleForm(ctx, { name: '', task: field(ctx.query, 'task'), payload: '', kind: 'every', every: '', cron: '', timezone: 'UTC', catchUp: 'last', overlap: 'skip', enabled: true }, 'create', null),
  );

  page(app, deps, '/schedules/edit', async (ctx) => {
    const name = field(ctx.query, 'name');
    const s = (await ctx.mill.schedules()).find((x) => x.name === name);
    if (!s) return { title: 'No such schedule', nav: 'schedules', status: 404, body: html`${pageHead('No such schedule')}<p>There is no schedule named "${name}". <a href="/schedules">Back to the schedules</a></p>` };
    return scheduleForm(
      ctx,
      {
        name: s.name,
        task: s.task,
        payload: JSON.stringify(s.payload, null, 2),
        kind: s.rule.kind,
        every: s.rule.kind === 'every' ? durationInput(s.rule.everyMs) : '',
        cron: s.rule.kind === 'cron' ? s.rule.expression : '',
        timezone: s.rule.kind === 'cron' ? s.rule.timezone : 'UTC',
        catchUp: s.catchUp,
        overlap: s.overlap,
        enabled: s.enabled,
      },
      'edit',
      null,
      s.source === 'config' ? fromFile(ctx) : null,
    );
  });

  app.post('/schedules/save', { preHandler: requireAdmin }, async (request, reply) => {
    const ctx = context(deps, request, reply);
    const body = request.body;
    const mode = field(body, 'mode') === 'edit' ? 'edit' : 'create';
    const v: ScheduleValues = {
      name: field(body, 'name'),
      task: field(body, 'task'),
      payload: typeof (body as Record<string, unknown>)?.payload === 'string' ? String((body as Record<string, string>).payload) : '',
      kind: field(body, 'kind') === 'cron' ? 'cron' : 'every',
      every: field(body, 'every'),
      cron: field(body, 'cron'),
      timezone: field(body, 'timezone'),
      catchUp: field(body, 'catchUp'),
      overlap: field(body, 'overlap'),
      enabled: field(body, 'enabled') === 'on',
    };
    try {
      if (!v.name) throw new Error('Give the schedule a name.');
      if (!v.task) throw new Error('Choose the task the schedule adds.');
      if (mode === 'create' && (await ctx.mill.schedules()).some((s) => s.name === v.name)) {
        throw new Error(`A schedule named "${v.name}" exists already; edit it, or choose another name.`);
      }
      let payload: unknown = {};
      if (v.payload.trim()) {
        try {
          payload = JSON.parse(v.payload);
        } catch (err) {
          throw new Error(`The payload is not valid JSON: ${(err as Error).message}.`);
        }
      }
      const spec: ScheduleSpec = {
        task: v.task,
        payload,
        catchUp: v.catchUp as ScheduleSpec['catchUp'],
        overlap: v.overlap as ScheduleSpec['overlap'],
        enabled: v.enabled,
      };
      if (v.kind === 'every') spec.every = v.every;
      else {
        spec.cron = v.cron;
        if (v.timezone) spec.timezone = v.timezone;
      }
      await ctx.mill.schedule(v.name, spec);
      return redirectWithFlash(reply, '/schedules', { kind: 'ok', text: `Schedule "${v.name}" ${mode === 'create' ? 'added' : 'saved'}.` });
    } catch (err) {
      const message = err instanceof Error && !('code' in err) ? err.message : errorText(deps, err);
      const [status, result] = await Promise.all([ctx.mill.daemonStatus(), scheduleForm(ctx, v, mode, message)]);
      return reply
        .code(400)
        .type('text/html; charset=utf-8')
        .send(layout({ ...result, principal: ctx.principal, csrf: ctx.csrf, notice: daemonNotice(deps.config, ctx.principal, status, ctx.now), flash: null }).value);
    }
  });

  app.post('/schedules/action', { preHandler: requireAdmin }, async (request, reply) => {
    const mill = context(deps, request, reply).mill;
    const name = field(request.body, 'name');
    const action = field(request.body, 'action');
    try {
      let text: string;
      if (action === 'pause' || action === 'resume') {
        await mill.setScheduleEnabled(name, action === 'resume');
        text = `Schedule "${name}" ${action === 'resume' ? 'resumed: it counts from now' : 'paused'}.`;
      } else if (action === 'run') {
        const task = await mill.runSchedule(name);
        text = `Schedule "${name}" ran now: task ${task.id}.`;
      } else if (action === 'delete') {
        text = (await mill.unschedule(name)) ? `Schedule "${name}" deleted.` : `There was no schedule "${name}".`;
      } else {
        text = '';
        throw new Error('Unknown action; use pause, resume, run or delete.');
      }
      return redirectWithFlash(reply, '/schedules', { kind: 'ok', text });
    } catch (err) {
      return redirectWithFlash(reply, '/schedules', { kind: 'error', text: err instanceof Error && !('code' in err) ? err.message : errorText(deps, err) });
    }
  });
}

function scheduleTable(ctx: PageContext, schedules: ScheduleInfo[]): SafeHtml {
  if (schedules.length === 0) return html`<p class="empty">No schedules yet. Add one here, with <code>taskmill schedule</code>, or under "schedules" in the config file.</p>`;
  const now = ctx.now;
  const rows = schedules.map((s) => {
    const config = s.source === 'config';
    const reason = config ? fromFile(ctx) : null;
    const btn = (action: string, label: string, kind: 'plain' | 'primary' | 'danger' = 'plain', confirm?: string, disabledReason: string | null = reason) =>
      actionButton({ action: '/schedules/action', label, csrf: ctx.csrf, principal: ctx.principal, kind, confirm, disabledReason, fields: { name: s.name, action } });
    return html`<tr id="schedule-${s.name}" data-schedule="${s.name}">
<th scope="row"><span class="name">${s.name}</span><div class="sub">${config ? html`<span class="badge s-info" title="${reason}">config file</span>` : html`<span class="badge s-info">api</span>`} ${s.enabled ? html`<span class="badge s-completed">active</span>` : html`<span class="badge s-cancelled">paused</span>`}</div></th>
<td data-label="Task"><a href="/tasks?name=${encodeURIComponent(s.task)}">${s.task}</a></td>
<td data-label="Rule"><code>${ruleText(s)}</code><div class="sub">${s.rule.kind === 'cron' ? s.rule.timezone : 'interval'} · catch-up ${s.catchUp} · overlap ${s.overlap}</div></td>
<td data-label="Last run">${s.lastFiredAt ? html`${time(s.lastFiredAt, now)}${s.lastTaskId ? html` <a href="/tasks/${s.lastTaskId}">#${s.lastTaskId}</a>` : ''}` : html`<span class="muted">never</span>`}<div class="sub"><a href="/tasks?schedule=${encodeURIComponent(s.name)}">its tasks</a></div></td>
<td data-label="Last skip">${s.lastSkippedAt ? html`${time(s.lastSkippedAt, now)}<div class="sub">${s.lastSkipReason ?? ''}${s.skippedCount > 1 ? ` (${s.skippedCount} skipped in all)` : ''}</div>` : html`<span class="muted">never</span>`}</td>
<td data-label="Next runs">${s.next.length ? html`<ol class="next">${s.next.map((d) => html`<li><time datetime="${d.toISOString()}">${formatTime(d)}</time> <span class="muted">UTC</span></li>`)}</ol>` : html`<span class="muted">${s.enabled ? '–' : 'paused'}</span>`}</td>
<td class="actions-cell"><div class="actions">
${btn('run', 'Run now', 'primary', undefined, null)}
${s.enabled ? btn('pause', 'Pause') : btn('resume', 'Resume')}
${config || ctx.principal.role !== 'admin' ? html`<button type="button" class="btn plain" disabled title="${reason ?? VIEWER_REASON}">Edit</button>` : html`<a class="btn plain" href="/schedules/edit?name=${encodeURIComponent(s.name)}">Edit</a>`}
${btn('delete', 'Delete', 'danger', `Delete schedule "${s.name}"? Its tasks stay.`)}
</div></td>
</tr>`;
  });
  return html`<div class="table-wrap"><table class="dense schedules"><thead><tr><th scope="col">Schedule</th><th scope="col">Task</th><th scope="col">Rule</th><th scope="col">Last run</th><th scope="col">Last skip</th><th scope="col">Next runs</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

async function scheduleForm(ctx: PageContext, v: ScheduleValues, mode: 'create' | 'edit', problem: string | null, readOnly: string | null = null): Promise<PageResult> {
  const names = ctx.mill.taskNames();
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  const admin = ctx.principal.role === 'admin';
  const blocked = readOnly ?? (admin ? null : VIEWER_REASON);
  return {
    title: mode === 'create' ? 'Add schedule' : `Edit ${v.name}`,
    nav: 'schedules',
    body: html`${pageHead(mode === 'create' ? 'Add schedule' : html`Edit schedule <span class="muted">${v.name}</span>`)}
${problem ? html`<div class="form-error" role="alert"><strong>The schedule was not saved.</strong> ${problem}</div>` : ''}
${blocked ? html`<p class="warn">${blocked}</p>` : ''}
<form method="post" action="/schedules/save" class="form panel">
  ${csrfField(ctx.csrf)}<input type="hidden" name="mode" value="${mode}">
  <div class="field-row">
    <div class="field"><label for="s-name">Name</label><input id="s-name" name="name" value="${v.name}" required${mode === 'edit' ? ' readonly' : ''} spellcheck="false" placeholder="nightly-report"></div>
    <div class="field"><label for="s-task">Task</label><select id="s-task" name="task" required><option value="" disabled${v.task ? '' : ' selected'}>Choose a task…</option>${names.map((n) => html`<option${n === v.task ? ' selected' : ''}>${n}</option>`)}${v.task && !names.includes(v.task) ? html`<option selected>${v.task}</option>` : ''}</select></div>
  </div>
  <div class="field"><label for="s-payload">Payload (JSON)</label><textarea id="s-payload" name="payload" rows="5" spellcheck="false" placeholder="{}">${v.payload}</textarea></div>
  <fieldset>
    <legend>Rule</legend>
    <div class="choice">
      <label><input type="radio" name="kind" value="every"${v.kind === 'every' ? ' checked' : ''}> Every</label>
      <input name="every" value="${v.every}" placeholder="5 minutes" aria-label="Interval">
    </div>
    <div class="choice">
      <label><input type="radio" name="kind" value="cron"${v.kind === 'cron' ? ' checked' : ''}> Cron</label>
      <input name="cron" value="${v.cron}" placeholder="0 3 * * *" aria-label="Cron expression" spellcheck="false">
      <label>in <input name="timezone" value="${v.timezone}" list="zones" aria-label="Time zone" spellcheck="false"></label>
      <datalist id="zones">${zones.map((z) => html`<option value="${z}">`)}</datalist>
    </div>
    <p class="help">Cron: 5 fields (or 6 with seconds), in the time zone given (IANA, such as Europe/Berlin).</p>
  </fieldset>
  <div class="field-row">
    <div class="field"><label for="s-catchup">After downtime</label><select id="s-catchup" name="catchUp">${CATCH_UP_POLICIES.map((p) => html`<option value="${p}"${v.catchUp === p ? ' selected' : ''}>${p === 'last' ? 'run the last missed once' : p === 'none' ? 'run none of the missed' : 'run each missed (capped)'}</option>`)}</select></div>
    <div class="field"><label for="s-overlap">While the previous task waits or runs</label><select id="s-overlap" name="overlap">${OVERLAP_POLICIES.map((p) => html`<option value="${p}"${v.overlap === p ? ' selected' : ''}>${p === 'skip' ? 'skip the new one' : 'add it anyway'}</option>`)}</select></div>
  </div>
  <div class="field"><label><input type="checkbox" name="enabled"${v.enabled ? ' checked' : ''}> Active (unticked: paused)</label></div>
  <div class="row"><button type="submit" class="btn primary"${blocked ? html` disabled title="${blocked}"` : ''}>${mode === 'create' ? 'Add schedule' : 'Save'}</button><a class="btn plain" href="/schedules">Cancel</a></div>
</form>`,
  };
}
