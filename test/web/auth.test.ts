// Logging in: sessions, the one-time link, CSRF, the failed-login limit, and that no secret is kept or
// logged in clear. A real server on loopback, on both engines.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ENGINES, PG_BASE_URL } from '../helpers/engines.js';
import { ADMIN, Browser, startWeb, VIEWER, type WebFixture } from '../helpers/web.js';

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`web authentication: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let web: WebFixture;
    before(async () => {
      web = await startWeb(engine);
    });
    after(async () => {
      await web?.close();
    });

    it('serves on loopback with security headers, and /healthz tells only up', async () => {
      assert.match(web.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const res = await fetch(`${web.base}/healthz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'up' });
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(web.loginLink, null, 'users exist: no login link');
    });

    it('sends a page without a session to /login?next=, and the API to 401 JSON', async () => {
      const page = await fetch(`${web.base}/tasks?status=FAILED`, { redirect: 'manual' });
      assert.equal(page.status, 303);
      assert.equal(page.headers.get('location'), `/login?next=${encodeURIComponent('/tasks?status=FAILED')}`);
      const api = await fetch(`${web.base}/api/tasks`);
      assert.equal(api.status, 401);
      assert.equal(((await api.json()) as { error: { code: string } }).error.code, 'UNAUTHENTICATED');
      const unknown = await fetch(`${web.base}/no/such/thing`, { redirect: 'manual' });
      assert.equal(unknown.status, 303, 'an unknown path does not reveal that it is unknown');
    });

    it('logs in with a session cookie (HttpOnly, SameSite=Strict), and logout ends it on the server', async () => {
      const b = new Browser(web.base);
      const res = await b.login(ADMIN, '/somewhere');
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/somewhere');
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith('taskmill_session='));
      assert.ok(cookie);
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Strict/);
      const sessionId = b.cookies.get('taskmill_session') as string;
      const home = await b.page('/');
      assert.equal(home.res.status, 200);
      // Logout without the CSRF token is refused; with it, the session ends.
      const noCsrf = await b.fetch('/logout', { method: 'POST', form: {} });
      assert.equal(noCsrf.status, 403);
      const out = await b.fetch('/logout', { method: 'POST', form: { _csrf: b.csrf ?? '' } });
      assert.equal(out.status, 303);
      // The old cookie is dead on the server, not only in the browser.
      const replay = await fetch(`${web.base}/`, { headers: { cookie: `taskmill_session=${sessionId}` }, redirect: 'manual' });
      assert.equal(replay.status, 303);
    });

    it('refuses a login form posted without its CSRF token, and a wrong password', async () => {
      const b = new Browser(web.base);
      await b.page('/login');
      const noCsrf = await b.fetch('/login', { method: 'POST', form: { name: ADMIN.name, password: ADMIN.password } });
      assert.equal(noCsrf.status, 403);
      const wrong = await b.fetch('/login', { method: 'POST', form: { name: ADMIN.name, password: 'nope nope', _csrf: b.csrf ?? '' } });
      assert.equal(wrong.status, 401);
      assert.equal(b.cookies.has('taskmill_session'), false);
    });

    it('a redirect after login never leaves the site', async () => {
      for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
        const res = await new Browser(web.base).login(ADMIN, next);
        assert.equal(res.headers.get('location'), '/', next);
      }
    });

    it('limits failed logins per name, and per address', async () => {
      const b = new Browser(web.base);
      await b.page('/login');
      const attempt = (name: string, password: string) =>
        b.fetch('/login', { method: 'POST', form: { name, password, _csrf: b.csrf ?? '' } });
      for (let i = 0; i < 10; i++) assert.equal((await attempt(VIEWER.name, `wrong ${i}`)).status, 401);
      const limited = await attempt(VIEWER.name, VIEWER.password);
      assert.equal(limited.status, 429, 'even the right password waits once the name is limited');
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
    });

    it('limits failed logins per address, whatever names are tried', async () => {
      // A fresh server: the previous test spent this address's budget on one name.
      const fresh = await startWeb(engine);
      try {
        const b = new Browser(fresh.base);
        await b.page('/login');
        for (let i = 0; i < 10; i++) {
          const r = await b.fetch('/login', { method: 'POST', form: { name: `guess${i}`, password: 'whatever1', _csrf: b.csrf ?? '' } });
          assert.equal(r.status, 401);
        }
        const limited = await b.fetch('/login', { method: 'POST', form: { name: ADMIN.name, password: ADMIN.password, _csrf: b.csrf ?? '' } });
        assert.equal(limited.status, 429);
        assert.equal(b.cookies.has('taskmill_session'), false);
      } finally {
        await fresh.close();
      }
    });

    it('keeps no password, session id or token in clear in the database or the log', async () => {
      const b = new Browser(web.base);
      await b.login(ADMIN);
      const sessionId = b.cookies.get('taskmill_session') as string;
      const { token } = await web.project.mill.auth.createToken('viewer', 'probe');
      const secrets = [ADMIN.password, VIEWER.password, sessionId, token];
      const dump = engine.name === 'sqlite' ? sqliteText(web.project.dir) : await postgresText(web.project.db.url);
      for (const s of secrets) assert.equal(dump.includes(s), false, 'a secret is stored in clear');
      const logText = JSON.stringify(web.logs);
      for (const s of secrets) assert.equal(logText.includes(s), false, 'a secret was logged');
    });
  });
}

/** Every byte of every file under the project (the SQLite database, its WAL, the logs). */
function sqliteText(dir: string): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = path.join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(dir);
  return files.map((f) => readFileSync(f).toString('latin1')).join('\n');
}

async function postgresText(url: string): Promise<string> {
  const schema = new URL(url).searchParams.get('schema') as string;
  const client = new pg.Client({ connectionString: PG_BASE_URL });
  await client.connect();
  try {
    let text = '';
    for (const t of ['web_users', 'web_tokens', 'web_sessions', 'web_login_links']) {
      const { rows } = await client.query(`SELECT * FROM ${schema}.${t}`);
      text += JSON.stringify(rows);
    }
    return text;
  } finally {
    await client.end();
  }
}
