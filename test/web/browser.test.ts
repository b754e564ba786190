// The admin page in a real browser (Debian's Chromium through playwright-core) against the real web
// server on loopback, with a real worker running tasks from a temp tasks folder, on both engines.
// Screenshots of every page (light, dark, phone width) go to test-artifacts/screenshots/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import type { Worker } from '../../src/worker/worker.js';
import { DaemonProject } from '../helpers/daemon.js';
import { ENGINES } from '../helpers/engines.js';
import { ADMIN, VIEWER, startWeb, type WebFixture } from '../helpers/web.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.resolve('test-artifacts/screenshots');
/** Generous: the machine running this may be loaded (2 cores, other suites). */
const T = 60_000;

const GATE = (dir: string, name: string) => path.join(dir, `gate-${name}`);

/** Handlers of the temp tasks folder; `gated` and `stepper` wait for a file the test writes. */
function handlers(dir: string): Record<string, string> {
  const waitFor = (file: string) =>
    `await new Promise((resolve) => { const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(file)})) { clearInterval(t); resolve(null); } }, 50); });`;
  return {
    echo: `export default async (payload: unknown) => payload;`,
    boom: `export default async () => { throw new Error('boom: kaput'); };`,
    gated: `import fs from 'node:fs';\nexport default async (payload: unknown) => { ${waitFor(GATE(dir, 'gated'))} return { done: true, payload }; };`,
    stepper: `import fs from 'node:fs';
export default async (_payload: unknown, ctx: { progress(v: number, m?: string): Promise<void> | void }) => {
  await ctx.progress(1, 'waiting to start');
  ${waitFor(GATE(dir, 'stepper'))}
  for (let i = 1; i <= 20; i++) { await ctx.progress(i * 5, 'step ' + i + ' of 20'); await new Promise((r) => setTimeout(r, 350)); }
  return { steps: 20 };
};`,
    typed: `const json = { type: 'object', properties: { to: { type: 'string', minLength: 3 }, count: { type: 'integer', minimum: 1 } }, required: ['to'], additionalProperties: false };
export const schema = { '~standard': { version: 1, vendor: 'test',
  validate: (v: any) => v && typeof v.to === 'string' && v.to.length >= 3 ? { value: v } : { issues: [{ message: 'expected a string of at least 3 characters', path: ['to'] }] },
  jsonSchema: { input: () => json, output: () => json } } };
export const example = { to: 'ada@example.com', count: 2 };
export default async (payload: unknown) => ({ sent: payload });`,
    'reports/daily': `export default async () => ({ rows: 42 });`,
    _helper: `export const shared = 1;`,
  };
}

async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

async function login(page: Page, base: string, user: { name: string; password: string }): Promise<void> {
  await page.goto(`${base}/`);
  await page.waitForURL(/\/login\?next=/, { timeout: T });
  await page.fill('input[name=name]', user.name);
  await page.fill('input[name=password]', user.password);
  await Promise.all([page.waitForURL(`${base}/`, { timeout: T }), page.click('button[type=submit]')]);
}

async function shoot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Waits until the element holds the text (the page's own script updates it; nothing reloads). */
async function waitText(page: Page, selector: string, text: RegExp): Promise<void> {
  await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout: T });
}

// In CI the browser tests must run: a missing Chromium fails them (at launch) instead of skipping.
const haveChromium = existsSync(CHROMIUM) || Boolean(process.env.CI);
if (!haveChromium) console.log(`# SKIPPED browser tests: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`admin page in Chromium: ${engine.name}`, { skip: available && haveChromium ? false : 'PostgreSQL or Chromium missing', timeout: 600_000 }, () => {
    let web: WebFixture;
    let worker: Worker;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    let dir: string;
    const errors: string[] = [];

    before(async () => {
      web = await startWeb(engine, { handlers: handlers('/nonexistent') });
      dir = web.project.dir;
      // The handlers name their gate files under the project's own folder.
      for (const [name, source] of Object.entries(handlers(dir))) web.project.writeHandler(name, source);
      worker = web.project.mill.worker({ concurrency: 4 });
      await worker.start();
      browser = await launch();
      context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      // Script errors and CSP refusals show as console errors; a refused form answers 400 on purpose.
      page.on('console', (m) => {
        if (m.type() === 'error' && !/status of 400/.test(m.text())) errors.push(m.text());
      });
      page.on('response', (r) => {
        if (r.url().includes('/assets/') && r.status() !== 200) errors.push(`${r.url()} answered ${r.status()}`);
      });
      page.on('dialog', (d) => void d.accept());
    });

    after(async () => {
      await browser?.close();
      await worker?.stop({ timeoutMs: 5_000 });
      await web?.close();
    });

    it('logs in through the form and shows the overview', async () => {
      await login(page, web.base, ADMIN);
      await page.locator('h1', { hasText: 'Overview' }).waitFor({ timeout: T });
      assert.equal(await page.locator('nav[aria-label=Main] a[aria-current=page]').textContent(), 'Overview');
    });

    it('with no daemon heartbeat shows the banner on every page, and opens its explanation', async () => {
      // What a daemon that could not reach its database leaves in Main.log (pino JSON lines).
      const logDir = path.join(String(web.project.config.varDir), 'log', 'daemon');
      mkdirSync(logDir, { recursive: true });
      writeFileSync(
        path.join(logDir, 'Main.log'),
        `${JSON.stringify({ level: 30, time: Date.now() - 60_000, msg: 'daemon started' })}\n` +
          `${JSON.stringify({ level: 50, time: Date.now() - 30_000, msg: 'module crashed', module: 'TaskWorker', error: 'connect ECONNREFUSED 127.0.0.1:5432' })}\n` +
          `${JSON.stringify({ level: 30, time: Date.now() - 10_000, msg: 'daemon stopped' })}\n`,
      );
      for (const p of ['/', '/tasks', '/schedules', '/daemon', '/tasks/new']) {
        await page.goto(web.base + p);
        await page.locator('.notice summary').waitFor({ timeout: T });
      }
      await page.click('.notice summary');
      const commands = await page.locator('.notice pre.cmd').allTextContents();
      assert.equal(commands.length, 2);
      assert.match(commands[0] ?? '', /^cd \S+ && npx taskmill( --config \S+)? start$/);
      assert.match(commands[1] ?? '', /^\* \* \* \* \* cd \S+ && npx taskmill.* watchdog/);
      const explanation = (await page.locator('.notice-body').textContent()) ?? '';
      assert.match(explanation, /Main\.log/);
      assert.match(explanation, /module crashed · module=TaskWorker · error=connect ECONNREFUSED 127\.0\.0\.1:5432/, 'the last error the main daemon logged');
      if (engine.name === 'sqlite') await shoot(page, 'notice-open-light');
    });

    it('adds a task through the form and sees it become COMPLETED without reloading', async () => {
      await page.goto(`${web.base}/tasks/new`);
      const names = await page.locator('select[name=name] option').allTextContents();
      assert.ok(names.includes('gated') && names.includes('reports/daily'));
      assert.ok(!names.some((n) => n.includes('_helper')), 'files starting with "_" are left out');
      await page.selectOption('select[name=name]', 'gated');
      await page.fill('textarea[name=payload]', '{"hello": "<script>alert(1)</script>"}');
      await Promise.all([page.waitForURL(/\/tasks\/\d+$/, { timeout: T }), page.click('form[data-add-form] button[type=submit]')]);
      await page.locator('.flash-ok', { hasText: /added/ }).waitFor({ timeout: T });
      assert.match((await page.locator('[data-testid=payload]').textContent()) ?? '', /<script>alert\(1\)<\/script>/, 'shown as text');
      await page.evaluate('window.__sameDocument = true');
      await waitText(page, '.page-head .badge', /STARTED|WAITING/);
      writeFileSync(GATE(dir, 'gated'), '');
      await waitText(page, '.page-head .badge', /COMPLETED/);
      assert.equal(await page.evaluate('window.__sameDocument'), true, 'the page was not reloaded');
      await waitText(page, '[data-testid=result]', /"done": true/);
    });

    it('refuses a bad payload for a task with a schema, in the browser, and offers its example', async () => {
      await page.goto(`${web.base}/tasks/new?name=typed`);
      const before = await web.project.mill.count({ name: 'typed' });
      await page.fill('textarea[name=payload]', '{"to": 1}');
      await page.click('form[data-add-form] button[type=submit]');
      await waitText(page, '#payload-status.bad', /"?to"? must be string/);
      assert.match(page.url(), /\/tasks\/new/);
      assert.equal(await page.locator('textarea[name=payload]').getAttribute('aria-invalid'), 'true');
      await page.fill('textarea[name=payload]', '{"to": "ada@example.com", "extra": 1}');
      await waitText(page, '#payload-status.bad', /"extra" is not an allowed field/);
      await page.fill('textarea[name=payload]', '{not json');
      await waitText(page, '#payload-status.bad', /Not valid JSON/);
      if (engine.name === 'sqlite') await shoot(page, 'add-refused-light');
      assert.equal(await web.project.mill.count({ name: 'typed' }), before, 'nothing was sent');
      await page.click('button[data-example]');
      await waitText(page, '#payload-status.ok', /matches the task/);
      await Promise.all([page.waitForURL(/\/tasks\/\d+$/, { timeout: T }), page.click('form[data-add-form] button[type=submit]')]);
      await waitText(page, '.page-head .badge', /COMPLETED/);
    });

    it('keeps the input and shows the server error next to the form', async () => {
      await page.goto(`${web.base}/tasks/new?name=echo`);
      await page.fill('textarea[name=payload]', '{"kept": true}');
      await page.check('input[name=when][value=delay]');
      await page.fill('input[name=delay]', 'soon-ish');
      await page.click('form[data-add-form] button[type=submit]');
      await page.locator('.form-error').waitFor({ timeout: T });
      assert.match((await page.locator('.form-error').textContent()) ?? '', /delay/i);
      assert.match(await page.locator('textarea[name=payload]').inputValue(), /"kept": true/);
      assert.equal(await page.locator('input[name=delay]').inputValue(), 'soon-ish');
    });

    it('opens a failed task, reads its stack trace, and retries it', async () => {
      const task = await web.project.mill.add('boom', { n: 1 }, { maxAttempts: 1 });
      assert.equal((await web.project.mill.wait(task.id, { timeout: T })).status, 'FAILED');
      await page.goto(`${web.base}/tasks?status=FAILED`);
      await Promise.all([page.waitForURL(`${web.base}/tasks/${task.id}`, { timeout: T }), page.click(`tr[data-task-id="${task.id}"] a.name`)]);
      const stack = (await page.locator('[data-testid=error]').textContent()) ?? '';
      assert.match(stack, /boom: kaput/);
      assert.match(stack, /\n\s+at /, 'the stack trace is shown');
      if (engine.name === 'sqlite') await shoot(page, 'task-failed-light');
      await page.click('form[action$="/retry"] button');
      await page.locator('.flash-ok', { hasText: /waiting to run again/ }).waitFor({ timeout: T });
      const again = await web.project.mill.wait(task.id, { timeout: T });
      assert.equal(again.status, 'FAILED');
      assert.equal(again.attempts, 1, 'a fresh attempt budget, spent once more');
    });

    it('bulk-retries every task matching a filter after a confirmation giving the count', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) ids.push((await web.project.mill.add('boom', { batch: 'bulk-x' }, { maxAttempts: 1, note: 'bulk-x' })).id);
      for (const id of ids) await web.project.mill.wait(id, { timeout: T });
      const firstFinish = new Map((await Promise.all(ids.map((id) => web.project.mill.get(id)))).map((t) => [t?.id, t?.finishedAt?.getTime()]));
      await page.goto(`${web.base}/tasks?status=FAILED&q=bulk-x`);
      await waitText(page, '[data-testid=match-count]', /^3$/);
      await page.click('a.btn:has-text("Retry all")');
      await waitText(page, '[data-testid=bulk-count]', /3 tasks/);
      if (engine.name === 'sqlite') await shoot(page, 'bulk-confirm-light');
      await Promise.all([page.waitForURL(/\/tasks\?/, { timeout: T }), page.click('form[action="/tasks/bulk"] button[type=submit]')]);
      await page.locator('.flash-ok', { hasText: /3 tasks retried/ }).waitFor({ timeout: T });
      for (const id of ids) {
        const t = await web.project.mill.wait(id, { timeout: T });
        assert.notEqual(t.finishedAt?.getTime(), firstFinish.get(id), `task ${id} ran again`);
      }
    });

    it('cancels the ticked rows', async () => {
      const a = await web.project.mill.add('echo', { n: 'a' }, { delay: '1 hour', note: 'tick-me' });
      const b = await web.project.mill.add('echo', { n: 'b' }, { delay: '1 hour', note: 'tick-me' });
      const c = await web.project.mill.add('echo', { n: 'c' }, { delay: '1 hour', note: 'tick-me' });
      await page.goto(`${web.base}/tasks?q=tick-me`);
      await page.check(`input[name=id][value="${a.id}"]`);
      await page.check(`input[name=id][value="${b.id}"]`);
      await waitText(page, 'output[data-selected-count]', /^2$/);
      await Promise.all([page.waitForURL(/\/tasks\?q=tick-me/, { timeout: T }), page.click('#bulk button[value=cancel]')]);
      await page.locator('.flash-ok', { hasText: /2 tasks cancelled/ }).waitFor({ timeout: T });
      assert.equal((await web.project.mill.get(a.id))?.status, 'CANCELLED');
      assert.equal((await web.project.mill.get(b.id))?.status, 'CANCELLED');
      assert.equal((await web.project.mill.get(c.id))?.status, 'WAITING', 'the unticked row is left alone');
      await web.project.mill.cancel(c.id);
      // A filter the client refuses is said above the list; the page still answers.
      const res = await page.goto(`${web.base}/tasks?queue=${encodeURIComponent('no spaces allowed')}`);
      assert.equal(res?.status(), 200);
      await waitText(page, '[data-live=tasks] .flash-error', /invalid queue/);
      assert.equal(await page.locator('input[name=queue]').inputValue(), 'no spaces allowed');
    });

    it('creates, pauses and runs a schedule', async () => {
      await page.goto(`${web.base}/schedules/new`);
      await page.fill('input[name=name]', 'hourly-echo');
      await page.selectOption('select[name=task]', 'echo');
      await page.fill('textarea[name=payload]', '{"from": "schedule"}');
      await page.fill('input[name=every]', '1 hour');
      await Promise.all([page.waitForURL(`${web.base}/schedules`, { timeout: T }), page.click('form[action="/schedules/save"] button[type=submit]')]);
      const row = page.locator('tr[data-schedule="hourly-echo"]');
      await row.locator('.badge', { hasText: 'active' }).waitFor({ timeout: T });
      assert.match((await row.textContent()) ?? '', /every 1 h/);
      await row.locator('button', { hasText: 'Pause' }).click();
      await page.locator('.flash-ok', { hasText: /paused/ }).waitFor({ timeout: T });
      await row.locator('.badge', { hasText: 'paused' }).waitFor({ timeout: T });
      assert.equal((await web.project.mill.schedules()).find((s) => s.name === 'hourly-echo')?.enabled, false);
      await row.locator('button', { hasText: 'Run now' }).click();
      const flash = page.locator('.flash-ok', { hasText: /ran now: task \d+/ });
      await flash.waitFor({ timeout: T });
      const id = Number(/task (\d+)/.exec((await flash.textContent()) ?? '')?.[1]);
      const t = await web.project.mill.wait(id, { timeout: T });
      assert.equal(t.status, 'COMPLETED');
      assert.equal(t.scheduleName, 'hourly-echo');
      if (engine.name === 'sqlite') await shoot(page, 'schedules-light');
    });

    it('watches a progress bar move', async () => {
      const task = await web.project.mill.add('stepper', {});
      await page.goto(`${web.base}/tasks/${task.id}`);
      const bar = page.locator('[data-testid=progress] progress');
      await bar.waitFor({ timeout: T });
      await page.evaluate('window.__sameDocument = true');
      writeFileSync(GATE(dir, 'stepper'), '');
      if (engine.name === 'sqlite') {
        await page.locator('[data-testid=progress] .progress-text', { hasText: /step/ }).waitFor({ timeout: T });
        await shoot(page, 'task-progress-light-1280');
      }
      const seen = new Set<number>();
      const deadline = Date.now() + T;
      while (seen.size < 3 && Date.now() < deadline) {
        const v = Number(await bar.getAttribute('value', { timeout: T }));
        if (v > 1) seen.add(v);
        await page.waitForFunction('true', undefined, { timeout: T, polling: 100 });
      }
      assert.ok(seen.size >= 2, `the bar moved through several values: ${[...seen].join(', ')}`);
      await waitText(page, '.page-head .badge', /COMPLETED/);
      assert.equal(await page.evaluate('window.__sameDocument'), true, 'without a reload');
    });

    it('gives a viewer disabled controls with the reason', async () => {
      const viewer = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      try {
        const v = await viewer.newPage();
        await login(v, web.base, VIEWER);
        const failed = (await web.project.mill.query({ status: ['FAILED'], limit: 1 })).tasks[0];
        assert.ok(failed);
        await v.goto(`${web.base}/tasks/${failed.id}`);
        const retry = v.locator('form[action$="/retry"] button');
        assert.equal(await retry.isDisabled(), true);
        assert.match((await retry.getAttribute('title')) ?? '', /viewer/);
        assert.equal(await v.locator('.notice').count(), 0, 'the notice is for admins by default');
      } finally {
        await viewer.close();
      }
    });

    it('shows a running daemon with its modules and summaries, and the banner again once it stops, without a reload', async () => {
      const daemon = new DaemonProject({ dir: web.project.dir, database: web.project.db.url, config: { varDir: String(web.project.config.varDir) } });
      try {
        await page.goto(`${web.base}/daemon`);
        await page.locator('.notice summary').waitFor({ timeout: T });
        await page.evaluate('window.__sameDocument = true');
        await daemon.start();
        await page.locator('.notice').waitFor({ state: 'detached', timeout: T });
        await page.locator('[data-live=daemons] th', { hasText: 'TaskWorker' }).first().waitFor({ timeout: T });
        assert.equal(await page.evaluate('window.__sameDocument'), true, 'the banner went and the modules came without a reload');
        // Summaries come over the control socket when the page is opened (not every 2 s).
        await page.reload();
        await page.locator('.summary h3').first().waitFor({ timeout: T });
        if (engine.name === 'sqlite') await shoot(page, 'daemon-running-light-1280');
        await page.evaluate('window.__sameDocument = true');
        await daemon.ok('stop');
        await page.locator('.notice summary').waitFor({ timeout: T });
        assert.equal(await page.evaluate('window.__sameDocument'), true, 'the banner came back without a reload');
      } finally {
        assert.deepEqual(await daemon.cleanup(), [], 'no process of the daemon outlives the test');
      }
    });

    it('renders every page without script errors (screenshots: light, dark, phone)', async () => {
      // A heartbeat, so the daemon page and overview show a daemon.
      const now = new Date();
      await web.project.mill.store.heartbeat({
        id: `${hostname()}:4242:${now.getTime()}`,
        host: hostname(),
        pid: 4242,
        startedAt: new Date(now.getTime() - 3 * 3_600_000),
        lastSeen: now,
        modules: [
          { name: 'TaskWorker', pid: 4243, state: 'running', loops: 1520, restarts: 0, lastError: null, startedAt: new Date(now.getTime() - 3 * 3_600_000).toISOString() },
          { name: 'Scheduler', pid: 4244, state: 'running', loops: 311, restarts: 1, lastError: 'database went away (reconnected)', startedAt: new Date(now.getTime() - 3_600_000).toISOString() },
          { name: 'Web', pid: 4245, state: 'running', loops: 1, restarts: 0, lastError: null, startedAt: now.toISOString() },
        ],
      });
      const failed = (await web.project.mill.query({ status: ['FAILED'], limit: 1 })).tasks[0];
      const pages: [string, string][] = [
        ['overview', '/'],
        ['tasks', '/tasks'],
        ['tasks-filtered', '/tasks?status=FAILED&status=COMPLETED&sort=finishedAt'],
        ['task', `/tasks/${failed?.id ?? 1}`],
        ['add', '/tasks/new?name=typed'],
        ['schedules', '/schedules'],
        ['schedule-edit', '/schedules/edit?name=hourly-echo'],
        ['daemon', '/daemon'],
      ];
      const shots = engine.name === 'sqlite';
      for (const [scheme, width] of [
        ['light', 1280],
        ['dark', 1280],
        ['light', 390],
      ] as const) {
        const ctx = await browser.newContext({ viewport: { width, height: 900 }, colorScheme: scheme, storageState: await context.storageState() });
        try {
          const p = await ctx.newPage();
          p.on('pageerror', (e) => errors.push(e.message));
          for (const [name, url] of pages) {
            const res = await p.goto(web.base + url);
            assert.equal(res?.status(), 200, `${url} answers 200`);
            await p.locator('h1').first().waitFor({ timeout: T });
            if (shots) await shoot(p, `${name}-${scheme}-${width}`);
          }
        } finally {
          await ctx.close();
        }
      }
      if (shots) {
        const anon = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        try {
          const p = await anon.newPage();
          await p.goto(`${web.base}/login`);
          await shoot(p, 'login-light-1280');
        } finally {
          await anon.close();
        }
      }
      assert.deepEqual(errors, [], 'no script errors, no CSP violations');
    });
  });
}
