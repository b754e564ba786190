// Add task: the task names of the tasks folder (files starting with "_" left out), a JSON payload
// checked in the browser (against the task's schema where it exports one) and again by the client,
// when to run, prerequisites, priority, queue, unique key and note. A refused add keeps the input.
import type { FastifyInstance } from 'fastify';
import { html } from '../html.js';
import type { AddOptions } from '../../client/taskmill.js';
import { requireAdmin } from '../auth/roles.js';
import type { WebDeps } from '../types.js';
import { type PageContext, type PageResult, context, errorText, field, page, redirectWithFlash } from './kit.js';
import { VIEWER_REASON, csrfField, layout, pageHead } from './layout.js';
import { daemonNotice } from './notice.js';

export interface AddValues {
  name: string;
  payload: string;
  when: 'now' | 'at' | 'delay';
  at: string;
  delay: string;
  after: string;
  priority: string;
  queue: string;
  uniqueKey: string;
  note: string;
}

type FieldName = keyof AddValues;

const EMPTY: AddValues = { name: '', payload: '', when: 'now', at: '', delay: '', after: '', priority: '', queue: '', uniqueKey: '', note: '' };

function readValues(body: unknown): AddValues {
  const when = field(body, 'when');
  return {
    name: field(body, 'name'),
    payload: typeof (body as Record<string, unknown>)?.payload === 'string' ? ((body as Record<string, string>).payload ?? '') : '',
    when: when === 'at' || when === 'delay' ? when : 'now',
    at: field(body, 'at'),
    delay: field(body, 'delay'),
    after: field(body, 'after'),
    priority: field(body, 'priority'),
    queue: field(body, 'queue'),
    uniqueKey: field(body, 'uniqueKey'),
    note: field(body, 'note'),
  };
}

class FormError extends Error {
  constructor(
    readonly field: FieldName,
    message: string,
  ) {
    super(message);
  }
}

/** The form's text as the client's add call; a problem names its field. */
function toAdd(v: AddValues): { payload: unknown; options: AddOptions } {
  let payload: unknown = {};
  if (v.payload.trim() !== '') {
    try {
      payload = JSON.parse(v.payload);
    } catch (err) {
      throw new FormError('payload', `The payload is not valid JSON: ${(err as Error).message}.`);
    }
  }
  const options: AddOptions = {};
  if (v.when === 'at') {
    if (!v.at) throw new FormError('at', 'Give the time to run at, or choose "now".');
    const at = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v.at) ? v.at : `${v.at}Z`);
    if (Number.isNaN(at.getTime())) throw new FormError('at', `"${v.at}" is not a time; use YYYY-MM-DDTHH:MM (UTC).`);
    options.runAt = at;
  } else if (v.when === 'delay') {
    if (!v.delay) throw new FormError('delay', 'Give the delay, such as "90s" or "5 minutes", or choose "now".');
    options.delay = v.delay;
  }
  if (v.after) {
    const ids = v.after.split(/[\s,]+/).filter(Boolean).map((x) => Number(x.replace(/^#/, '')));
    if (ids.some((id) => !Number.isSafeInteger(id) || id < 1)) throw new FormError('after', 'Prerequisites are task ids (whole numbers) separated by commas or spaces.');
    options.after = ids;
  }
  if (v.priority) {
    const p = Number(v.priority);
    if (!Number.isSafeInteger(p)) throw new FormError('priority', 'The priority is a whole number (higher runs first).');
    options.priority = p;
  }
  if (v.queue) options.queue = v.queue;
  if (v.uniqueKey) options.uniqueKey = v.uniqueKey;
  if (v.note) options.note = v.note;
  return { payload, options };
}

/** Which field a client error is about, from its wording (the message itself is shown as is). */
function fieldOf(message: string): FieldName {
  const m = message.toLowerCase();
  if (m.includes('prerequisite')) return 'after';
  if (m.includes('payload') || m.includes('schema')) return 'payload';
  if (m.includes('runat')) return 'at';
  if (m.includes('delay')) return 'delay';
  if (m.includes('priority')) return 'priority';
  if (m.includes('queue')) return 'queue';
  if (m.includes('uniquekey')) return 'uniqueKey';
  if (m.includes('note')) return 'note';
  return 'name';
}

export function registerAddTask(app: FastifyInstance, deps: WebDeps): void {
  page(app, deps, '/tasks/new', async (ctx) => {
    const values: AddValues = { ...EMPTY, name: field(ctx.query, 'name') };
    const from = Number(field(ctx.query, 'from'));
    if (Number.isSafeInteger(from) && from > 0) {
      const t = await ctx.mill.get(from);
      if (t) {
        Object.assign(values, {
          name: t.name,
          payload: JSON.stringify(t.payload, null, 2),
          after: t.prerequisites.join(', '),
          priority: t.priority ? String(t.priority) : '',
          queue: t.queue === 'default' ? '' : t.queue,
          uniqueKey: t.uniqueKey ?? '',
          note: t.note ?? '',
        });
      }
    }
    return addPage(ctx, values, null, Number.isSafeInteger(from) && from > 0 ? from : null);
  });

  app.post('/tasks/new', { preHandler: requireAdmin }, async (request, reply) => {
    const ctx = context(deps, request, reply);
    const values = readValues(request.body);
    try {
      if (!values.name) throw new FormError('name', 'Choose the task to add.');
      const { payload, options } = toAdd(values);
      const task = await ctx.mill.add(values.name, payload, options);
      return redirectWithFlash(reply, `/tasks/${task.id}`, { kind: 'ok', text: `Task ${task.id} (${task.name}) added.` });
    } catch (err) {
      const problem = err instanceof FormError ? { field: err.field, message: err.message } : { field: fieldOf(errorText(deps, err)), message: errorText(deps, err) };
      const [status, result] = await Promise.all([ctx.mill.daemonStatus(), addPage(ctx, values, problem, null)]);
      return reply
        .code(400)
        .type('text/html; charset=utf-8')
        .send(layout({ ...result, principal: ctx.principal, csrf: ctx.csrf, notice: daemonNotice(deps.config, ctx.principal, status, ctx.now), flash: null }).value);
    }
  });
}

async function addPage(ctx: PageContext, v: AddValues, problem: { field: FieldName; message: string } | null, from: number | null): Promise<PageResult> {
  const names = ctx.mill.taskNames();
  const schemas: Record<string, unknown> = {};
  await Promise.all(
    names.map(async (n) => {
      try {
        const s = await ctx.mill.taskSchema(n);
        if (s) schemas[n] = s;
      } catch (err) {
        ctx.deps.logger.warn('could not read the payload schema of a task', { task: n, error: (err as Error).message });
      }
    }),
  );
  const admin = ctx.principal.role === 'admin';
  const err = (f: FieldName) => (problem?.field === f ? html`<p class="field-error" id="err-${f}">${problem.message}</p>` : '');
  const inv = (f: FieldName) => (problem?.field === f ? html` aria-invalid="true" aria-describedby="err-${f}"` : '');
  const known = names.includes(v.name);
  const body = html`${pageHead(from ? html`Add task <span class="muted">(a copy of <a href="/tasks/${from}">#${from}</a>)</span>` : 'Add task')}
${problem ? html`<div class="form-error" role="alert"><strong>The task was not added.</strong> ${problem.message}</div>` : ''}
${admin ? '' : html`<p class="warn">${VIEWER_REASON}</p>`}
<form method="post" action="/tasks/new" class="form panel" data-add-form novalidate>
  ${csrfField(ctx.csrf)}
  <div id="task-schemas" data-schemas="${JSON.stringify(schemas)}" hidden></div>
  <div class="field">
    <label for="f-name">Task</label>
    ${
      names.length === 0
        ? html`<p class="warn">No task files were found in <code>${ctx.deps.config.tasksDir}</code> (files starting with "_" are left out).</p>`
        : html`<select id="f-name" name="name" required data-task-select${inv('name')}><option value=""${v.name ? '' : ' selected'} disabled>Choose a task…</option>${names.map(
            (n) => html`<option${n === v.name ? ' selected' : ''}>${n}</option>`,
          )}${v.name && !known ? html`<option selected>${v.name}</option>` : ''}</select>`
    }
    <span class="help">The files of <code>${ctx.deps.config.tasksDir}</code>.</span>
    ${err('name')}
  </div>
  <div class="field">
    <label for="f-payload">Payload (JSON)</label>
    <textarea id="f-payload" name="payload" rows="10" spellcheck="false" data-json placeholder="{}"${inv('payload')}>${v.payload}</textarea>
    <div class="row"><button type="button" class="btn plain" data-example disabled title="This task exports no schema with an example.">Insert example</button><button type="button" class="btn plain" data-format-json>Format</button><span id="schema-info" class="help"></span></div>
    <p id="payload-status" class="json-status" aria-live="polite"></p>
    <details class="schema-view" id="schema-view" hidden><summary>The task's payload schema</summary><pre></pre></details>
    ${err('payload')}
  </div>
  <fieldset>
    <legend>When</legend>
    <div class="choice">
      <label><input type="radio" name="when" value="now"${v.when === 'now' ? ' checked' : ''}> Now</label>
      <label><input type="radio" name="when" value="at"${v.when === 'at' ? ' checked' : ''}> At a time</label>
      <label><input type="radio" name="when" value="delay"${v.when === 'delay' ? ' checked' : ''}> After a delay</label>
    </div>
    <div class="field" data-when="at"><label for="f-at">Run at (UTC)</label><input id="f-at" type="datetime-local" name="at" step="1" value="${v.at}"${inv('at')}>${err('at')}</div>
    <div class="field" data-when="delay"><label for="f-delay">Delay</label><input id="f-delay" name="delay" value="${v.delay}" placeholder="90s, 5 minutes, 2 hours"${inv('delay')}>${err('delay')}</div>
  </fieldset>
  <div class="field-row">
    <div class="field"><label for="f-after">Prerequisites</label><input id="f-after" name="after" value="${v.after}" placeholder="12, 15" inputmode="numeric"${inv('after')}><span class="help">Task ids that must complete first.</span>${err('after')}</div>
    <div class="field"><label for="f-priority">Priority</label><input id="f-priority" name="priority" type="number" step="1" value="${v.priority}" placeholder="0"${inv('priority')}><span class="help">Higher runs first.</span>${err('priority')}</div>
    <div class="field"><label for="f-queue">Queue</label><input id="f-queue" name="queue" value="${v.queue}" placeholder="the task's own, or default"${inv('queue')}>${err('queue')}</div>
  </div>
  <div class="field-row">
    <div class="field"><label for="f-unique">Unique key</label><input id="f-unique" name="uniqueKey" value="${v.uniqueKey}"${inv('uniqueKey')}><span class="help">While a task with this key waits or runs, no second one is added.</span>${err('uniqueKey')}</div>
    <div class="field"><label for="f-note">Note</label><input id="f-note" name="note" value="${v.note}"${inv('note')}>${err('note')}</div>
  </div>
  <div class="row"><button type="submit" class="btn primary"${admin ? '' : html` disabled title="${VIEWER_REASON}"`}>Add task</button><a class="btn plain" href="/tasks">Cancel</a></div>
</form>`;
  return { title: 'Add task', nav: 'add', body };
}
