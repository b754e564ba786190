// How the pages print values: times (absolute and relative), durations, statuses, JSON, progress.
import { html, type SafeHtml } from '../html.js';
import type { Json, TaskProgress, TaskStatus } from '../../model/task.js';

const pad = (n: number) => String(n).padStart(2, '0');

/** UTC, to the second: "2026-12-02 01:58:03". */
export function formatTime(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** "3 s", "4 min", "2 h 5 min", "3 d". */
export function formatDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

/** "5 min ago" or "in 5 min" next to `now`. */
export function relative(d: Date, now: Date): string {
  const ms = d.getTime() - now.getTime();
  if (Math.abs(ms) < 1000) return 'now';
  return ms < 0 ? `${formatDuration(ms)} ago` : `in ${formatDuration(ms)}`;
}

/** A <time> with the relative text and the exact UTC time as its title. */
export function time(d: Date | null | undefined, now: Date): SafeHtml {
  if (!d) return html`<span class="muted">–</span>`;
  return html`<time datetime="${d.toISOString()}" title="${formatTime(d)} UTC">${relative(d, now)}</time>`;
}

export function statusBadge(status: TaskStatus, cancelRequested = false): SafeHtml {
  return html`<span class="badge s-${status.toLowerCase()}">${status}${cancelRequested ? ' (cancelling)' : ''}</span>`;
}

/** JSON, indented; past `limit` characters cut with a marker, so a page never carries megabytes. */
export function formatJson(value: Json | undefined, limit: number): { text: string; truncated: boolean; size: number } {
  const text = JSON.stringify(value ?? null, null, 2);
  if (text.length <= limit) return { text, truncated: false, size: text.length };
  return { text: `${text.slice(0, limit)}\n…`, truncated: true, size: text.length };
}

/** One line of JSON for a table cell. */
export function jsonPreview(value: Json, limit = 80): string {
  const text = JSON.stringify(value);
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/** The share done (0–100) a progress value stands for, if it is a number or holds `percent`/`done`+`total`. */
export function progressPercent(p: TaskProgress | null | undefined): number | null {
  if (!p) return null;
  const v = p.value;
  if (typeof v === 'number' && Number.isFinite(v)) return Math.max(0, Math.min(100, v));
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, Json>;
    if (typeof o.percent === 'number') return Math.max(0, Math.min(100, o.percent));
    if (typeof o.done === 'number' && typeof o.total === 'number' && o.total > 0) {
      return Math.max(0, Math.min(100, (o.done / o.total) * 100));
    }
  }
  return null;
}

/** A native <progress> (no inline style, so the CSP holds) with its text. */
export function progressBar(p: TaskProgress | null | undefined, compact = false): SafeHtml {
  if (!p) return html``;
  const pct = progressPercent(p);
  const label = pct === null ? jsonPreview(p.value, 40) : `${Math.round(pct)} %`;
  const text = p.message ? `${label} · ${p.message}` : label;
  return html`<span class="progress${compact ? ' compact' : ''}">${
    pct === null ? html`<progress aria-label="progress"></progress>` : html`<progress max="100" value="${pct.toFixed(1)}" aria-label="progress">${Math.round(pct)} %</progress>`
  }<span class="progress-text">${text}</span></span>`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}
