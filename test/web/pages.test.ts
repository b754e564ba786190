// The pages' pure parts: the filter as it lives in the URL, the notice's commands and Main.log's last
// error, readable stacks, the chart, and that every value rendered into a page is escaped.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { throughputChart } from '../../src/web/pages/chart.js';
import { filterSearch, readFilter, toClientFilter, toClientQuery } from '../../src/web/pages/filters.js';
import { progressPercent } from '../../src/web/pages/format.js';
import { safeBack } from '../../src/web/pages/layout.js';
import { lastMainError, shellQuote } from '../../src/web/pages/notice.js';
import { readableStack } from '../../src/web/pages/task.js';

describe('admin pages: building blocks', () => {
  it('reads a filter from the URL and writes it back the same, defaults left out', () => {
    const f = readFilter({ status: ['FAILED', 'waiting', 'NOPE'], name: ' Send-Mail ', q: 'x', sort: 'finishedAt', limit: '100', from: '2026-12-01T10:00' });
    assert.deepEqual(f.status, ['WAITING', 'FAILED']);
    assert.equal(f.sort, 'finishedAt');
    assert.equal(f.limit, 100);
    const search = filterSearch(f);
    assert.deepEqual(readFilter(Object.fromEntries([...new URLSearchParams(search)].reduce((m, [k, v]) => {
      const prev = m.get(k);
      m.set(k, prev === undefined ? v : ([] as string[]).concat(prev, v));
      return m;
    }, new Map<string, string | string[]>()))), f);
    const q = toClientQuery(f, 'abc');
    assert.equal(q.name, 'send-mail');
    assert.equal(q.createdFrom?.toISOString(), '2026-12-01T10:00:00.000Z', 'a datetime-local value is UTC');
    assert.equal(q.cursor, 'abc');
    assert.deepEqual(toClientFilter(readFilter({})), {}, 'no filter: every task');
    assert.equal(readFilter({ limit: '7', sort: 'evil', order: 'sideways' }).limit, 50);
    assert.equal(filterSearch(readFilter({})), '');
  });

  it('follows only local paths back after a write', () => {
    assert.equal(safeBack('/tasks?status=FAILED', '/'), '/tasks?status=FAILED');
    for (const bad of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', 42]) assert.equal(safeBack(bad, '/tasks'), '/tasks');
  });

  it('quotes paths for the shell only when needed', () => {
    assert.equal(shellQuote('/srv/app/taskmill.config.json'), '/srv/app/taskmill.config.json');
    assert.equal(shellQuote("/srv/my app/it's"), `'/srv/my app/it'\\''s'`);
  });

  it("finds the main daemon's last error line in Main.log, from the file's tail", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-pages-'));
    try {
      assert.equal(lastMainError(dir), null, 'no log here');
      const logDir = path.join(dir, 'log', 'daemon');
      mkdirSync(logDir, { recursive: true });
      const filler = `${JSON.stringify({ level: 30, time: 1, msg: 'x'.repeat(200) })}\n`.repeat(3000);
      writeFileSync(
        path.join(logDir, 'Main.log'),
        `${JSON.stringify({ level: 50, time: 1, msg: 'old error' })}\n${filler}` +
          `${JSON.stringify({ level: 50, time: Date.UTC(2026, 11, 2), msg: 'module crashed', module: 'Scheduler', error: 'boom' })}\n` +
          `${JSON.stringify({ level: 30, time: 2, msg: 'later info' })}\n{not json\n`,
      );
      const e = lastMainError(dir);
      assert.equal(e?.message, 'module crashed · module=Scheduler · error=boom');
      assert.equal(e?.at?.toISOString(), '2026-12-02T00:00:00.000Z');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the file of a handler loaded from a data: URL in a stack', () => {
    const stack = 'Error: x\n    at run (data:text/javascript,a%3D(()%3D%3E1)%3B?filePath=%2Fsrv%2Ftasks%2Fa.ts%3Fv%3D1%26n%3D2:3:14)\n    at y (/b.ts:1:1)';
    assert.equal(readableStack(stack), 'Error: x\n    at run (/srv/tasks/a.ts:3:14)\n    at y (/b.ts:1:1)');
  });

  it('reads a progress value as a share when it can', () => {
    const at = new Date();
    assert.equal(progressPercent({ value: 42, message: null, at }), 42);
    assert.equal(progressPercent({ value: { done: 3, total: 4 }, message: null, at }), 75);
    assert.equal(progressPercent({ value: { percent: 140 }, message: null, at }), 100);
    assert.equal(progressPercent({ value: { phase: 'copy' }, message: null, at }), null);
    assert.equal(progressPercent(null), null);
  });

  it('draws the chart as SVG without inline style, bars scaled to a round maximum', () => {
    const perMinute = Array.from({ length: 60 }, (_, i) => ({ minute: new Date(Date.UTC(2026, 11, 2, 1, i)), completed: i === 59 ? 7 : 0, failed: i === 58 ? 2 : 0 }));
    const svg = throughputChart(perMinute).value;
    assert.match(svg, /<svg [^>]*role="img"/);
    assert.match(svg, /completed <strong>7<\/strong>/);
    assert.match(svg, /failed <strong>2<\/strong>/);
    assert.doesNotMatch(svg, /style=/);
    assert.match(svg, />10<\/text>/, 'axis up to 10');
    assert.equal((svg.match(/class="bar-ok"/g) ?? []).length, 1);
    assert.equal((svg.match(/class="bar-fail"/g) ?? []).length, 1);
  });
});
