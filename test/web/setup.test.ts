// The first start with nobody to log in: the one-time login link (works once, expires), the first
// administrator's form; web.readOnly; TLS (Secure cookies, HSTS) and the warning for a non-loopback
// address without it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { request } from 'node:https';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createWebServer } from '../../src/web/server.js';
import { ENGINES, tempSqlite } from '../helpers/engines.js';
import { ADMIN, Browser, startWeb } from '../helpers/web.js';
import { makeProject } from '../helpers/project.js';
import { silentLogger } from '../../src/model/logger.js';
import { systemClock } from '../../src/model/clock.js';
import { resolveConfig } from '../../src/config/load.js';
import { configuredModules } from '../../src/daemon/module.js';

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`first start: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('makes a one-time login link that works once, then asks for the first administrator', async () => {
      const web = await startWeb(engine, { users: false });
      try {
        assert.ok(web.loginLink, 'no user and no token: a link is made');
        assert.match(web.loginLink, new RegExp(`^${web.url}login/link/[A-Za-z0-9_-]{43}$`));
        const linkPath = new URL(web.loginLink).pathname;
        const b = new Browser(web.base);
        const first = await b.fetch(linkPath);
        assert.equal(first.status, 303);
        assert.equal(first.headers.get('location'), '/setup');
        const setup = await b.page('/setup');
        assert.equal(setup.res.status, 200);
        assert.match(setup.text, /Create the administrator/);
        // The link is spent: another browser (or the same) gets nothing from it.
        const again = await new Browser(web.base).fetch(linkPath);
        assert.equal(again.status, 410);
        const differ = await b.fetch('/setup', { method: 'POST', form: { name: 'root', password: 'long enough 1', repeat: 'other one 1', _csrf: b.csrf ?? '' } });
        assert.equal(differ.status, 400);
        const made = await b.fetch('/setup', { method: 'POST', form: { name: 'root', password: 'long enough 1', repeat: 'long enough 1', _csrf: b.csrf ?? '' } });
        assert.equal(made.status, 303);
        assert.deepEqual((await web.project.mill.auth.users()).map((u) => [u.name, u.role]), [['root', 'admin']]);
        assert.equal(await web.project.mill.auth.needsSetup(), false);
        const root = await new Browser(web.base).login({ name: 'root', password: 'long enough 1' });
        assert.equal(root.status, 303);
        assert.equal(JSON.stringify(web.logs).includes(linkPath.split('/').pop() as string), false, 'the secret is not in the log');
      } finally {
        await web.close();
      }
    });

    it('a login link expires unused', async () => {
      const web = await startWeb(engine, { users: false });
      try {
        // Valid for 1 ms: once the clock has moved past it, it is refused.
        const expires = Date.now() + 1;
        const secret = await web.project.mill.auth.createLoginLink(1);
        while (Date.now() <= expires + 1) await new Promise((r) => setTimeout(r, 2));
        const res = await new Browser(web.base).fetch(`/login/link/${secret}`);
        assert.equal(res.status, 410);
        assert.equal((await new Browser(web.base).fetch('/login/link/not-a-real-secret')).status, 410);
      } finally {
        await web.close();
      }
    });
  });
}

describe('web settings', () => {
  it('validates the web keys, and web.enabled: false turns the Web module off', () => {
    const config = resolveConfig({}, null, '/tmp');
    assert.deepEqual([config.web.host, config.web.port, config.web.readOnly, config.web.sessionTtl], ['127.0.0.1', 8275, false, 12 * 3_600_000]);
    assert.throws(() => resolveConfig({ web: { port: 70_000 } }, null, '/tmp'), /web\.port/);
    assert.throws(() => resolveConfig({ web: { tls: { cert: 'c.pem' } } }, null, '/tmp'), /web\.tls\.key/);
    assert.throws(() => resolveConfig({ web: { sessionTtl: 'soon' } }, null, '/tmp'), /web\.sessionTtl/);
    const web = (c: object) => configuredModules(resolveConfig(c, null, '/tmp')).find((m) => m.name === 'Web')?.enabled;
    assert.equal(web({}), true);
    assert.equal(web({ web: { enabled: false } }), false);
    assert.equal(web({ daemonModules: { Web: { enabled: false } } }), false);
  });

  it('web.readOnly makes every principal a viewer', async () => {
    const web = await startWeb(ENGINES[0] as (typeof ENGINES)[0], { config: { web: { readOnly: true } } });
    try {
      const { token } = await web.project.mill.auth.createToken('admin', 'ci');
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const me = await fetch(`${web.base}/api/me`, { headers });
      assert.equal(((await me.json()) as { role: string }).role, 'viewer');
      const add = await fetch(`${web.base}/api/tasks`, { method: 'POST', headers, body: JSON.stringify({ name: 'echo' }) });
      assert.equal(add.status, 403);
      const b = new Browser(web.base);
      await b.login(ADMIN);
      const meSession = await b.fetch('/api/me');
      assert.equal(((await meSession.json()) as { role: string }).role, 'viewer');
    } finally {
      await web.close();
    }
  });

  it('serves over TLS with Secure cookies and HSTS', async () => {
    const db = await tempSqlite();
    const project = await makeProject({ name: 'sqlite', create: async () => db, available: async () => true }, {});
    const cert = path.join(db.dir, 'cert.pem');
    const key = path.join(db.dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const config = { ...project.mill.config, web: { ...project.mill.config.web, port: 0, tls: { cert, key } } };
    const server = createWebServer({ mill: project.mill, config, logger: silentLogger, clock: systemClock });
    try {
      const { url } = await server.start();
      assert.match(url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
      const res = await new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
        request(`${url}login`, { rejectUnauthorized: false }, (r) => {
          r.resume();
          r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers }));
        }).on('error', reject).end();
      });
      assert.equal(res.status, 200);
      assert.match(String(res.headers['strict-transport-security']), /max-age=/);
      const cookies = [res.headers['set-cookie'] ?? []].flat();
      assert.ok(cookies.length > 0 && cookies.every((c) => /; Secure/i.test(c)), cookies.join(' | '));
    } finally {
      await server.stop();
      await server.stop();
      await project.close();
    }
  });

  it('warns when it binds a non-loopback address without TLS; start and stop are idempotent', async () => {
    const project = await makeProject(ENGINES[0] as (typeof ENGINES)[0], {});
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
    const config = { ...project.mill.config, web: { ...project.mill.config.web, host: '0.0.0.0', port: 0 } };
    const server = createWebServer({ mill: project.mill, config, logger, clock: systemClock });
    try {
      const a = await server.start();
      const b = await server.start();
      assert.equal(a.url, b.url);
      assert.match(warnings.join('\n'), /without TLS/);
    } finally {
      await server.stop();
      await server.stop();
      await project.close();
    }
  });
});
