// Completed and failed tasks per minute over the last hour, as inline SVG drawn on the server: no
// library, no script, colours from the stylesheet (classes, not style attributes, so the CSP holds).
import { html, type SafeHtml } from '../html.js';
import { formatTime } from './format.js';

export interface MinuteCount {
  minute: Date;
  completed: number;
  failed: number;
}

/** A round upper bound for the axis: 1, 2, 5, 10, 20, 50 … */
function niceMax(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

export function throughputChart(perMinute: readonly MinuteCount[]): SafeHtml {
  const W = 1000;
  const H = 200;
  const left = 40;
  const bottom = 22;
  const top = 8;
  const plotW = W - left - 8;
  const plotH = H - bottom - top;
  const max = niceMax(Math.max(0, ...perMinute.map((m) => m.completed + m.failed)));
  const n = Math.max(perMinute.length, 1);
  const slot = plotW / n;
  const barW = Math.max(1, slot - 2);
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const totalDone = perMinute.reduce((s, m) => s + m.completed, 0);
  const totalFailed = perMinute.reduce((s, m) => s + m.failed, 0);
  const grid = [0, max / 2, max].map(
    (v) => html`<line class="grid" x1="${left}" x2="${W - 8}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"></line><text class="axis" x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${Number.isInteger(v) ? v : v.toFixed(1)}</text>`,
  );
  const bars = perMinute.map((m, i) => {
    const x = left + i * slot + 1;
    const hc = (m.completed / max) * plotH;
    const hf = (m.failed / max) * plotH;
    const label = `${formatTime(m.minute).slice(11, 16)} UTC: ${m.completed} completed, ${m.failed} failed`;
    return html`<g><title>${label}</title><rect class="hit" x="${x.toFixed(1)}" y="${top}" width="${barW.toFixed(1)}" height="${plotH}"></rect>${
      hc > 0 ? html`<rect class="bar-ok" x="${x.toFixed(1)}" y="${(top + plotH - hc).toFixed(1)}" width="${barW.toFixed(1)}" height="${hc.toFixed(1)}"></rect>` : ''
    }${hf > 0 ? html`<rect class="bar-fail" x="${x.toFixed(1)}" y="${(top + plotH - hc - hf).toFixed(1)}" width="${barW.toFixed(1)}" height="${hf.toFixed(1)}"></rect>` : ''}</g>`;
  });
  const ticks = perMinute
    .map((m, i) => ({ m, i }))
    .filter(({ i }) => i % 15 === 0 || i === perMinute.length - 1)
    .map(({ m, i }) => html`<text class="axis" x="${(i === perMinute.length - 1 ? W - 8 : i === 0 ? left : left + i * slot + slot / 2).toFixed(1)}" y="${H - 6}" text-anchor="${i === perMinute.length - 1 ? 'end' : i === 0 ? 'start' : 'middle'}">${formatTime(m.minute).slice(11, 16)}</text>`);
  return html`<figure class="chart">
<div class="chart-scroll"><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Tasks per minute over the last hour: ${totalDone} completed, ${totalFailed} failed">${grid}${bars}${ticks}</svg></div>
<figcaption><span class="key key-ok"></span>completed <strong>${totalDone.toLocaleString('en-US')}</strong> <span class="key key-fail"></span>failed <strong>${totalFailed.toLocaleString('en-US')}</strong> <span class="muted">in the last hour, per minute (UTC)</span></figcaption>
</figure>`;
}
