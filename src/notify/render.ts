// What a notification says: the subject and body of an e-mail (plain text, and HTML escaped by the
// template), and the JSON of a webhook. One place, so both channels tell the same story.
import { html, type SafeHtml } from '../web/html.js';
import { isoSeconds } from '../model/clock.js';
import type { ClaimedDelivery, Notification } from '../model/notification.js';
import type { Json } from '../model/task.js';
import type { Message } from './channels.js';

export interface RenderOptions {
  /** The admin page's address (web.publicUrl): each task gets a link to /tasks/:id. */
  publicUrl: string | undefined;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

export function taskLink(publicUrl: string | undefined, taskId: number | null): string | null {
  if (!publicUrl || taskId === null) return null;
  return `${publicUrl.replace(/\/+$/, '')}/tasks/${taskId}`;
}

function firstLine(text: string | null, max = 100): string {
  const line = (text ?? '').split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

interface AlertDetail {
  host?: string;
  lastSeen?: string;
  downSince?: string;
  noticedBy?: string;
}

function detailOf(n: Notification): AlertDetail {
  return typeof n.detail === 'object' && n.detail !== null && !Array.isArray(n.detail) ? (n.detail as AlertDetail) : {};
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

export function renderMail(message: Message, options: RenderOptions): RenderedMail {
  if (message.kind === 'digest') return renderDigest(message.deliveries, options);
  const n = message.delivery.notification;
  if (n.kind === 'task_failed') return renderFailure(n, options);
  return renderAlert(n);
}

/** A stack with each frame cut to a readable length (a module loaded from a data: URL names it whole). */
function readableStack(stack: string | null): string {
  if (!stack) return '(none)';
  return stack
    .split('\n')
    .map((l) => (l.length > 240 ? `${l.slice(0, 200)}…${l.slice(-30)}` : l))
    .join('\n');
}

function renderFailure(n: Notification, { publicUrl }: RenderOptions): RenderedMail {
  const link = taskLink(publicUrl, n.taskId);
  const stack = readableStack(n.errorStack);
  const subject = `[taskmill] task ${n.taskName ?? '?'} #${n.taskId ?? '?'} failed: ${firstLine(n.error, 80)}`;
  const facts: [string, string][] = [
    ['Task', `${n.taskName ?? '?'} #${n.taskId ?? '?'}`],
    ['Error', n.error ?? '(none)'],
    ['Attempts', `${n.attempts ?? '?'} of ${n.maxAttempts ?? '?'}`],
    ['Host', n.host ?? '(unknown: see the error)'],
    ['Queue', n.queue ?? '?'],
    ['Failed at', isoSeconds(n.createdAt)],
    ...(link ? ([['Link', link]] as [string, string][]) : []),
  ];
  const text = [
    `The task ${n.taskName ?? '?'} #${n.taskId ?? '?'} failed for good: it will not run again unless retried.`,
    '',
    ...facts.map(([k, v]) => `${`${k}:`.padEnd(11)}${v}`),
    '',
    'Stack:',
    indent(stack),
    '',
    'Payload (shortened):',
    indent(n.payload ?? '(none)'),
    '',
    `Last output lines (${n.outputTail.length}):`,
    indent(n.outputTail.length ? n.outputTail.join('\n') : '(none)'),
    '',
  ].join('\n');
  const body = html`<p>The task <b>${n.taskName ?? '?'} #${n.taskId ?? '?'}</b> failed for good: it will not run again unless retried.</p>
<table>${facts.map(([k, v]) => html`<tr><th align="left">${k}</th><td>${k === 'Link' ? html`<a href="${v}">${v}</a>` : v}</td></tr>`)}</table>
<h3>Stack</h3><pre>${stack}</pre>
<h3>Payload (shortened)</h3><pre>${n.payload ?? '(none)'}</pre>
<h3>Last output lines</h3><pre>${n.outputTail.join('\n') || '(none)'}</pre>`;
  return { subject, text, html: page(body) };
}

function renderDigest(deliveries: readonly ClaimedDelivery[], { publicUrl }: RenderOptions): RenderedMail {
  const tasks = deliveries.map((d) => d.notification);
  const from = deliveries.reduce((min, d) => Math.min(min, d.windowStart?.getTime() ?? Infinity), Infinity);
  const since = Number.isFinite(from) ? ` since ${isoSeconds(new Date(from))}` : '';
  const subject = `[taskmill] ${tasks.length} more task${tasks.length === 1 ? '' : 's'} failed${since} (digest)`;
  const line = (n: Notification) => {
    const link = taskLink(publicUrl, n.taskId);
    return `#${n.taskId ?? '?'} ${n.taskName ?? '?'}: ${firstLine(n.error, 200)}${link ? `  <${link}>` : ''}`;
  };
  const text = [
    `Past the limit of failure mails per interval, these ${tasks.length} failures were gathered here:`,
    '',
    ...tasks.map(line),
    '',
  ].join('\n');
  const body = html`<p>Past the limit of failure mails per interval, these ${tasks.length} failures were gathered here:</p>
<table><tr><th align="left">Task</th><th align="left">Name</th><th align="left">Error</th></tr>${tasks.map((n) => {
    const link = taskLink(publicUrl, n.taskId);
    const id = `#${n.taskId ?? '?'}`;
    return html`<tr><td>${link ? html`<a href="${link}">${id}</a>` : id}</td><td>${n.taskName ?? '?'}</td><td>${firstLine(n.error, 200)}</td></tr>`;
  })}</table>`;
  return { subject, text, html: page(body) };
}

function renderAlert(n: Notification): RenderedMail {
  const d = detailOf(n);
  const host = d.host ?? n.host ?? '?';
  const down = n.kind === 'daemon_down';
  const subject = down ? `[taskmill] daemon not running on ${host}` : `[taskmill] daemon running again on ${host}`;
  const lines = down
    ? [
        `No taskmill daemon on ${host} has sent a heartbeat since ${d.lastSeen ?? '?'}: tasks, schedules and maintenance`,
        'there have stopped (other hosts of the cluster, if any, go on). Start it with "taskmill start" or',
        'run "taskmill watchdog" from cron every minute.',
      ]
    : [`A taskmill daemon on ${host} sends heartbeats again (down since ${d.downSince ?? '?'}; heartbeat ${d.lastSeen ?? '?'}).`];
  const text = [...lines, '', `Noticed by ${d.noticedBy ?? '?'} at ${isoSeconds(n.createdAt)}.`, ''].join('\n');
  return { subject, text, html: page(html`${lines.map((l) => html`${l}<br>`)}<p>Noticed by ${d.noticedBy ?? '?'} at ${isoSeconds(n.createdAt)}.</p>`) };
}

function page(body: SafeHtml): string {
  return html`<!doctype html><html><body style="font-family: sans-serif">${body}</body></html>`.toString();
}

/** The webhook's JSON body. `id` is the same on every retry of one message, so a receiver can drop repeats. */
export function renderWebhook(message: Message, options: RenderOptions): { id: string; body: Json } {
  const task = (n: Notification): Json => ({
    notification: n.id,
    id: n.taskId,
    name: n.taskName,
    queue: n.queue,
    error: n.error,
    errorStack: n.errorStack,
    attempts: n.attempts,
    maxAttempts: n.maxAttempts,
    host: n.host,
    payload: n.payload,
    output: n.outputTail,
    failedAt: n.createdAt.toISOString(),
    link: taskLink(options.publicUrl, n.taskId),
  });
  if (message.kind === 'digest') {
    const ids = message.deliveries.map((d) => d.notification.id);
    return {
      id: `digest-${Math.min(...ids)}-${Math.max(...ids)}-${ids.length}`,
      body: { type: 'task.failed.digest', tasks: message.deliveries.map((d) => task(d.notification)) },
    };
  }
  const n = message.delivery.notification;
  const id = `notification-${n.id}`;
  if (n.kind === 'task_failed') return { id, body: { type: 'task.failed', task: task(n) } };
  return { id, body: { type: n.kind === 'daemon_down' ? 'daemon.down' : 'daemon.up', at: n.createdAt.toISOString(), detail: n.detail } };
}
