// A real web server on loopback over a throw-away project, and a small browser-like client for it
// (a cookie jar, the CSRF token from the last form, logging in).
import type { ConfigInput } from '../../src/config/schema.js';
import type { Logger } from '../../src/model/logger.js';
import { serveWeb, type Serving } from '../../src/web/serve.js';
import type { PagesPlugin } from '../../src/web/types.js';
import type { Engine } from './engines.js';
import { makeProject, type Project } from './project.js';

export interface LogLine {
  level: string;
  message: string;
  context?: Record<string, unknown>;
}

export interface WebFixture extends Serving {
  project: Project;
  base: string;
  logs: LogLine[];
  close(): Promise<void>;
}

export const ADMIN = { name: 'ada', password: 'correct horse battery' };
export const VIEWER = { name: 'vic', password: 'viewer password 1' };

export async function startWeb(
  engine: Engine,
  o: { handlers?: Record<string, string>; config?: ConfigInput; users?: boolean; pages?: PagesPlugin } = {},
): Promise<WebFixture> {
  const project = await makeProject(engine, o.handlers ?? { echo: 'export default async (p: unknown) => p;' }, {
    ...o.config,
    web: { port: 0, ...o.config?.web },
  });
  if (o.users !== false) {
    await project.mill.auth.addUser(ADMIN.name, ADMIN.password, 'admin');
    await project.mill.auth.addUser(VIEWER.name, VIEWER.password, 'viewer');
  }
  const logs: LogLine[] = [];
  const log = (level: string) => (message: string, context?: Record<string, unknown>) => logs.push({ level, message, context });
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  const serving = await serveWeb({ mill: project.mill, logger, port: 0, pages: o.pages });
  return {
    ...serving,
    project,
    base: serving.url.replace(/\/$/, ''),
    logs,
    close: async () => {
      await serving.server.stop();
      await project.close();
    },
  };
}

/** A client that keeps cookies and the CSRF token of the last page it read. */
export class Browser {
  readonly cookies = new Map<string, string>();
  csrf: string | null = null;

  constructor(readonly base: string) {}

  async fetch(path: string, init: RequestInit & { form?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    let body = init.body;
    if (init.form) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(this.base + path, { ...init, headers, body, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = (pair ?? '').indexOf('=');
      const name = (pair ?? '').slice(0, eq);
      const value = (pair ?? '').slice(eq + 1);
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /** GETs a page and remembers its CSRF token (hidden `_csrf` field or meta tag). */
  async page(path: string): Promise<{ res: Response; text: string }> {
    const res = await this.fetch(path);
    const text = await res.text();
    const m = /name="_csrf" value="([^"]+)"/.exec(text) ?? /name="csrf-token" content="([^"]+)"/.exec(text);
    if (m?.[1]) this.csrf = m[1];
    return { res, text };
  }

  async login(user: { name: string; password: string }, next = '/'): Promise<Response> {
    await this.page(`/login?next=${encodeURIComponent(next)}`);
    return this.fetch('/login', { method: 'POST', form: { name: user.name, password: user.password, next, _csrf: this.csrf ?? '' } });
  }
}
