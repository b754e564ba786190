// The JSON API over real HTTP on loopback, on both engines: what it answers, what it refuses and with
// which status, who may write, and that the OpenAPI document lists exactly the routes that exist.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiRoutes } from '../../src/web/api/index.js';
import { ENGINES } from '../helpers/engines.js';
import { ADMIN, Browser, startWeb, VIEWER, type WebFixture } from '../helpers/web.js';

interface ErrorJson {
  error: { code: string; message: string };
}

/** A concrete path for a route pattern: parameters become harmless values. */
const concrete = (url: string) => url.replace(/:id\b/g, '1').replace(/:[A-Za-z]+/g, 'x').replace(/\*$/, 'x');

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`web API: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let web: WebFixture;
    let admin: string;
    let viewer: string;
    const call = async (token: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(web.base + path, {
        method,
        redirect: 'manual',
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as unknown) : null, text };
    };

    before(async () => {
      web = await startWeb(engine, {
        users: true,
        config: { limits: { payload: 2000 } },
        handlers: { echo: 'export default async (p: unknown) => p;', 'billing/charge': 'export default async () => 1;', _shared: 'export const helper = 1;' },
      });
      admin = (await web.project.mill.auth.createToken('admin', 'ci')).token;
      viewer = (await web.project.mill.auth.createToken('viewer', 'dashboard')).token;
    });
    after(async () => {
      await web?.close();
    });

    it('adds, reads, cancels and retries a task; an illegal transition is 409', async () => {
      const added = await call(admin, 'POST', '/api/tasks', { name: 'echo', payload: { n: 1 }, options: { delay: '1 hour', note: 'from the API' } });
      assert.equal(added.status, 201, added.text);
      const task = added.json as { id: number; status: string; note: string; runAt: string };
      assert.equal(task.status, 'WAITING');
      assert.equal(task.note, 'from the API');
      const got = await call(viewer, 'GET', `/api/tasks/${task.id}`);
      assert.equal(got.status, 200);
      assert.deepEqual((got.json as { payload: unknown }).payload, { n: 1 });
      assert.equal((await call(admin, 'POST', `/api/tasks/${task.id}/cancel`)).status, 200);
      const again = await call(admin, 'POST', `/api/tasks/${task.id}/cancel`);
      assert.equal(again.status, 409);
      assert.equal((again.json as ErrorJson).error.code, 'INVALID_TRANSITION');
      const retried = await call(admin, 'POST', `/api/tasks/${task.id}/retry`);
      assert.equal((retried.json as { status: string }).status, 'WAITING');
      assert.equal((await call(admin, 'POST', `/api/tasks/${task.id}/retry`)).status, 409);
      const missing = await call(admin, 'GET', '/api/tasks/999999');
      assert.equal(missing.status, 404);
      assert.equal((missing.json as ErrorJson).error.code, 'TASK_NOT_FOUND');
    });

    it('adds a batch in one transaction: all or none', async () => {
      const ok = await call(admin, 'POST', '/api/tasks/batch', { tasks: [{ name: 'echo' }, { name: 'billing/charge', payload: { cents: 5 } }] });
      assert.equal(ok.status, 201, ok.text);
      assert.equal((ok.json as { tasks: unknown[] }).tasks.length, 2);
      const before = (await web.project.mill.list({ limit: 1000 })).length;
      const bad = await call(admin, 'POST', '/api/tasks/batch', { tasks: [{ name: 'echo' }, { name: 'nope' }] });
      assert.equal(bad.status, 400);
      assert.equal((bad.json as ErrorJson).error.code, 'UNKNOWN_TASK');
      assert.equal((await web.project.mill.list({ limit: 1000 })).length, before, 'nothing of a refused batch is added');
    });

    it('answers 400 naming the field, for bad JSON, bad fields and bad names', async () => {
      const badJson = await call(admin, 'POST', '/api/tasks', '{"name": ');
      assert.equal(badJson.status, 400);
      const noName = await call(admin, 'POST', '/api/tasks', { payload: {} });
      assert.equal(noName.status, 400);
      assert.match((noName.json as ErrorJson).error.message, /"name"/);
      const extra = await call(admin, 'POST', '/api/tasks', { name: 'echo', options: { priority: 'high' } });
      assert.equal(extra.status, 400);
      assert.match((extra.json as ErrorJson).error.message, /options\.priority/);
      for (const name of ['../etc/passwd', '/etc/passwd', 'echo/../../x', 'a//b', 'nope', '..', 'echo\u0000']) {
        const res = await call(admin, 'POST', '/api/tasks', { name });
        assert.equal(res.status, 400, `${JSON.stringify(name)}: ${res.text}`);
        assert.match((res.json as ErrorJson).error.code, /INVALID_INPUT|UNKNOWN_TASK/);
      }
      const badId = await call(admin, 'GET', '/api/tasks/abc');
      assert.equal(badId.status, 400);
      assert.match((badId.json as ErrorJson).error.message, /"id"/);
    });

    it('answers 413 past limits.payload', async () => {
      const big = await call(admin, 'POST', '/api/tasks', { name: 'echo', payload: { blob: 'x'.repeat(3000) } });
      assert.equal(big.status, 413);
      assert.equal((big.json as ErrorJson).error.code, 'PAYLOAD_TOO_LARGE');
      const huge = await call(admin, 'POST', '/api/tasks', { name: 'echo', payload: { blob: 'x'.repeat(200_000) } });
      assert.equal(huge.status, 413, 'a body over the server limit as well');
    });

    it('refuses every route without credentials: pages go to /login, the API and /metrics answer 401', async () => {
      const routes = web.server.routes().filter((r) => !['GET /login', 'HEAD /login', 'POST /login', 'GET /login/link/:secret', 'HEAD /login/link/:secret', 'GET /healthz', 'HEAD /healthz', 'GET /assets/*', 'HEAD /assets/*'].includes(`${r.method} ${r.url}`));
      assert.ok(routes.length > 10);
      for (const r of routes) {
        const res = await call(null, r.method, concrete(r.url));
        const json = r.url.startsWith('/api') || r.url === '/metrics';
        if (json) {
          assert.equal(res.status, 401, `${r.method} ${r.url}`);
          if (r.method !== 'HEAD') assert.equal((res.json as ErrorJson).error.code, 'UNAUTHENTICATED');
        } else {
          assert.equal(res.status, 303, `${r.method} ${r.url}`);
          assert.match(res.headers.get('location') ?? '', /^\/login\?next=/);
        }
      }
    });

    it('refuses a wrong or revoked token with 401', async () => {
      assert.equal((await call('tm_wrong', 'GET', '/api/me')).status, 401);
      assert.equal((await call(`${admin}x`, 'GET', '/api/me')).status, 401);
      const { token, info } = await web.project.mill.auth.createToken('admin', 'short-lived');
      assert.equal((await call(token, 'GET', '/api/me')).status, 200);
      assert.equal(await web.project.mill.auth.revokeToken(info.id), true);
      const revoked = await call(token, 'GET', '/api/me');
      assert.equal(revoked.status, 401);
      // A wrong token is refused even on a page path (no redirect to a login it cannot use).
      assert.equal((await call('tm_wrong', 'GET', '/')).status, 401);
    });

    it('gives a viewer 403 on every write route of the API, and lets it read', async () => {
      const writes = apiRoutes({ ...web.project, config: web.project.mill.config } as never).filter((r) => r.write);
      assert.ok(writes.length >= 8);
      for (const r of writes) {
        const res = await call(viewer, r.method, concrete(r.path), r.body ? {} : undefined);
        assert.equal(res.status, 403, `${r.method} ${r.path}: ${res.text}`);
        assert.equal((res.json as ErrorJson).error.code, 'FORBIDDEN');
      }
      assert.deepEqual((await call(viewer, 'GET', '/api/me')).json, { kind: 'token', name: 'dashboard', role: 'viewer' });
      assert.equal((await call(viewer, 'GET', '/api/schedules')).status, 200);
    });

    it('needs the CSRF header for a session\'s API write; a token needs none', async () => {
      const b = new Browser(web.base);
      await b.login(ADMIN);
      const body = JSON.stringify({ name: 'echo' });
      const without = await b.fetch('/api/tasks', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      assert.equal(without.status, 403);
      assert.equal(((await without.json()) as ErrorJson).error.code, 'CSRF_INVALID');
      const page = await b.page('/setup');
      assert.equal(page.res.status, 200);
      const withToken = await b.fetch('/api/tasks', { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-csrf-token': b.csrf ?? '' } });
      assert.equal(withToken.status, 201);
      assert.equal((await call(admin, 'POST', '/api/tasks', { name: 'echo' })).status, 201);
    });

    it('lists with filters and a keyset cursor, counts, and acts in bulk by ids and by filter', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await call(admin, 'POST', '/api/tasks', { name: 'echo', payload: { marker: `needle-${i}` }, options: { delay: '1 hour', queue: 'bulkq' } });
        ids.push((r.json as { id: number }).id);
      }
      const page1 = await call(viewer, 'GET', '/api/tasks?queue=bulkq&limit=2&order=asc');
      assert.equal(page1.status, 200, page1.text);
      const p1 = page1.json as { tasks: { id: number }[]; nextCursor: string };
      assert.deepEqual(p1.tasks.map((t) => t.id), ids.slice(0, 2));
      const page2 = (await call(viewer, 'GET', `/api/tasks?queue=bulkq&limit=2&order=asc&cursor=${encodeURIComponent(p1.nextCursor)}`)).json as { tasks: { id: number }[] };
      assert.deepEqual(page2.tasks.map((t) => t.id), ids.slice(2, 4));
      const text = (await call(viewer, 'GET', '/api/tasks?text=needle-3')).json as { tasks: { id: number }[] };
      assert.deepEqual(text.tasks.map((t) => t.id), [ids[3]]);
      assert.deepEqual((await call(viewer, 'GET', '/api/tasks/count?queue=bulkq&status=WAITING')).json, { count: 5, capped: false });
      const badStatus = await call(viewer, 'GET', '/api/tasks?status=WAITING,DONE');
      assert.equal(badStatus.status, 400);
      assert.match((badStatus.json as ErrorJson).error.message, /status/);
      assert.equal((await call(viewer, 'GET', '/api/tasks?limit=501')).status, 400);
      assert.equal((await call(viewer, 'GET', '/api/tasks?bogus=1')).status, 400);

      const byIds = await call(admin, 'POST', '/api/tasks/bulk', { action: 'cancel', ids: ids.slice(0, 2) });
      assert.deepEqual(byIds.json, { matched: 2, changed: 2 });
      const byFilter = await call(admin, 'POST', '/api/tasks/bulk', { action: 'cancel', filter: { queue: 'bulkq' } });
      assert.deepEqual(byFilter.json, { matched: 5, changed: 3 }, 'the cancelled two are skipped, not errors');
      const retried = await call(admin, 'POST', '/api/tasks/bulk', { action: 'retry', filter: { queue: 'bulkq', status: ['CANCELLED'] } });
      assert.equal((retried.json as { changed: number }).changed, 5);
      const deleted = await call(admin, 'POST', '/api/tasks/bulk', { action: 'delete', ids: [ids[4] as number] });
      assert.deepEqual(deleted.json, { matched: 1, changed: 1 });
      assert.equal((await call(admin, 'POST', '/api/tasks/bulk', { action: 'explode', ids: [1] })).status, 400);
    });

    it('deletes a task (404 when missing, 409 while a live task depends on it) and lists dependants', async () => {
      const parent = (await call(admin, 'POST', '/api/tasks', { name: 'echo', options: { delay: '1 hour' } })).json as { id: number };
      const child = (await call(admin, 'POST', '/api/tasks', { name: 'echo', options: { after: [parent.id] } })).json as { id: number };
      const deps = await call(viewer, 'GET', `/api/tasks/${parent.id}/dependants`);
      assert.deepEqual((deps.json as { tasks: { id: number }[] }).tasks.map((t) => t.id), [child.id]);
      const refused = await call(admin, 'DELETE', `/api/tasks/${parent.id}`);
      assert.equal(refused.status, 409);
      assert.equal((await call(admin, 'DELETE', `/api/tasks/${child.id}`)).status, 204);
      assert.equal((await call(admin, 'DELETE', `/api/tasks/${parent.id}`)).status, 204);
      assert.equal((await call(admin, 'DELETE', `/api/tasks/${parent.id}`)).status, 404);
      assert.equal((await call(viewer, 'GET', '/api/tasks/999999/dependants')).status, 404);
    });

    it('answers stats, daemon status, task names and schemas; a name with tricks is refused', async () => {
      const stats = (await call(viewer, 'GET', '/api/stats')).json as { byStatus: Record<string, number>; perMinute: unknown[] };
      assert.equal(typeof stats.byStatus.WAITING, 'number');
      assert.equal(stats.perMinute.length, 60);
      const status = (await call(viewer, 'GET', '/api/daemon-status')).json as { running: boolean };
      assert.equal(status.running, false);
      assert.deepEqual((await call(viewer, 'GET', '/api/task-names')).json, { names: ['billing/charge', 'echo'] });
      const schema = await call(viewer, 'GET', '/api/task-schema?name=billing/charge');
      assert.equal(schema.status, 200, schema.text);
      assert.equal((await call(viewer, 'GET', '/api/task-schema?name=nope')).status, 404);
      for (const name of ['../echo', '..%2Fecho', '/etc/passwd', 'echo/..', '']) {
        const res = await call(viewer, 'GET', `/api/task-schema?name=${name}`);
        assert.equal(res.status, 400, `${name}: ${res.text}`);
      }
    });

    it('refuses every non-GET route to a session without the CSRF token, and every write to a viewer session', async () => {
      const writes = web.server.routes().filter((r) => !['GET', 'HEAD'].includes(r.method) && r.url !== '/login');
      assert.ok(writes.some((r) => !r.url.startsWith('/api')), 'the pages\' forms are among them');
      const adminSession = new Browser(web.base);
      await adminSession.login(ADMIN);
      for (const r of writes) {
        const res = await adminSession.fetch(concrete(r.url), { method: r.method, form: { name: 'echo' } });
        assert.equal(res.status, 403, `${r.method} ${r.url} without a CSRF token`);
      }
      const viewerSession = new Browser(web.base);
      await viewerSession.login(VIEWER);
      await viewerSession.page('/');
      for (const r of writes.filter((w) => w.url !== '/logout')) {
        const res = await viewerSession.fetch(concrete(r.url), { method: r.method, form: { name: 'echo', _csrf: viewerSession.csrf ?? '' } });
        assert.equal(res.status, 403, `${r.method} ${r.url} by a viewer`);
      }
    });

    it('manages schedules: save, pause, resume, run, remove; unknown ones are 404', async () => {
      const saved = await call(admin, 'PUT', '/api/schedules/nightly', { task: 'echo', cron: '0 3 * * *', timezone: 'Europe/Berlin' });
      assert.equal(saved.status, 200, saved.text);
      assert.equal((saved.json as { next: string[] }).next.length, 3);
      assert.equal(((await call(admin, 'POST', '/api/schedules/nightly/pause')).json as { enabled: boolean }).enabled, false);
      assert.equal(((await call(admin, 'POST', '/api/schedules/nightly/resume')).json as { enabled: boolean }).enabled, true);
      const run = await call(admin, 'POST', '/api/schedules/nightly/run');
      assert.equal(run.status, 201);
      assert.equal((run.json as { scheduleName: string }).scheduleName, 'nightly');
      const list = await call(viewer, 'GET', '/api/schedules');
      assert.deepEqual((list.json as { schedules: { name: string }[] }).schedules.map((s) => s.name), ['nightly']);
      assert.equal((await call(admin, 'DELETE', '/api/schedules/nightly')).status, 204);
      assert.equal((await call(admin, 'DELETE', '/api/schedules/nightly')).status, 404);
      assert.equal((await call(admin, 'POST', '/api/schedules/nope/run')).status, 404);
      const badRule = await call(admin, 'PUT', '/api/schedules/x', { task: 'echo', cron: 'every tuesday' });
      assert.equal(badRule.status, 400);
    });

    it('documents every /api route in the OpenAPI document, and nothing else', async () => {
      const doc = (await call(viewer, 'GET', '/api/openapi.json')).json as { openapi: string; paths: Record<string, Record<string, unknown>> };
      assert.match(doc.openapi, /^3\./);
      const documented = Object.entries(doc.paths)
        .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
        .sort();
      const registered = web.server
        .routes()
        .filter((r) => r.url.startsWith('/api/') && r.method !== 'HEAD' && r.url !== '/api/openapi.json')
        .map((r) => `${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`)
        .sort();
      assert.deepEqual(documented, registered);
    });
  });
}
