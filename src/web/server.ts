// The web edge: one fastify server for the admin page, the JSON API and /metrics. It authenticates
// every request but the login routes, /healthz and the assets (src/web/auth/), sets strict security
// headers on every response, and serves over TLS when web.tls is configured.
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyHelmet from '@fastify/helmet';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ConfigError, TaskmillError } from '../model/errors.js';
import { registerAuthentication, wantsJson } from './auth/authenticate.js';
import { registerLogin } from './auth/login.js';
import { messagePage } from './auth/login-page.js';
import { STATUS_BY_CODE, WebError, type ErrorBody } from './errors.js';
import pagesPlugin from './pages/index.js';
import type { PagesPlugin, WebDeps } from './types.js';

export interface WebServerOptions {
  /** The pages; by default src/web/pages/index.ts. */
  pages?: PagesPlugin;
  /** Overrides web.host / web.port (`taskmill web --port`). */
  host?: string;
  port?: number;
  /** Extra routes registered after authentication (the JSON API, metrics). */
  plugins?: ((app: FastifyInstance, deps: WebDeps) => Promise<void> | void)[];
}

export interface WebServer {
  readonly app: FastifyInstance;
  /** Listens (once; a second call returns the same address). */
  start(): Promise<{ url: string }>;
  /** Closes the server and every connection it holds; safe to call twice or before start. */
  stop(): Promise<void>;
  /** The address once listening ("http://127.0.0.1:8275/"), else null. */
  readonly url: string | null;
  /** Every route registered ("GET /api/tasks/:id"), for tests that walk them all. */
  routes(): { method: string; url: string }[];
}

/** Extra bytes a request body may carry around one task's payload (the other fields, JSON overhead). */
const BODY_OVERHEAD_BYTES = 64 * 1024;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export function createWebServer(deps: WebDeps, options: WebServerOptions = {}): WebServer {
  const web = deps.config.web;
  const host = options.host ?? web.host;
  const port = options.port ?? web.port;
  const tls = web.tls ? { cert: readPem(deps, 'cert', web.tls.cert), key: readPem(deps, 'key', web.tls.key) } : null;
  const app = (tls
    ? Fastify({ https: tls, bodyLimit: deps.config.limits.payloadBytes + BODY_OVERHEAD_BYTES })
    : Fastify({ bodyLimit: deps.config.limits.payloadBytes + BODY_OVERHEAD_BYTES })) as unknown as FastifyInstance;

  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url });
  });

  void app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        ...(tls ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    frameguard: { action: 'deny' },
    hsts: tls ? { maxAge: 180 * 86_400 } : false,
    referrerPolicy: { policy: 'same-origin' },
  });
  void app.register(fastifyCookie);
  void app.register(fastifyFormbody);
  void app.register(fastifyCsrf, {
    sessionPlugin: '@fastify/cookie',
    cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, secure: tls !== null },
  });

  void app.register(async (root) => {
    registerAuthentication(root, deps);
    root.setErrorHandler((err: FastifyError, request, reply) => sendError(err, request, reply, deps));
    root.setNotFoundHandler((request, reply) => sendError(new WebError(404, 'NOT_FOUND', `no such page: ${request.method} ${request.url.split('?')[0]}`), request, reply, deps));
    registerLogin(root, { deps, secure: tls !== null });
    root.get('/healthz', async (_request, reply) => {
      try {
        await deps.mill.ping();
        return { status: 'up' };
      } catch {
        return reply.code(503).send({ status: 'down' });
      }
    });
    for (const plugin of options.plugins ?? []) await plugin(root, deps);
    await root.register(options.pages ?? pagesPlugin, { deps });
  });

  let started: Promise<{ url: string }> | null = null;
  let stopped: Promise<void> | null = null;
  let url: string | null = null;
  return {
    app,
    get url() {
      return url;
    },
    routes: () => [...routes],
    start() {
      started ??= (async () => {
        await app.listen({ host, port });
        const address = app.server.address() as AddressInfo;
        const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        url = `${tls ? 'https' : 'http'}://${shown}:${address.port}/`;
        if (!tls && !isLoopback(host)) {
          deps.logger.warn(
            `serving on ${host} without TLS: passwords and session cookies cross the network in clear; set web.tls.cert and web.tls.key, or bind 127.0.0.1 behind a TLS proxy`,
            { host },
          );
        }
        return { url };
      })();
      return started;
    },
    stop() {
      stopped ??= (async () => {
        await started?.catch(() => undefined);
        await app.close();
        url = null;
      })();
      return stopped;
    },
  };
}

function readPem(deps: WebDeps, which: 'cert' | 'key', file: string): Buffer {
  const full = path.resolve(deps.config.baseDir, file);
  try {
    return readFileSync(full);
  } catch (err) {
    throw new ConfigError(`cannot read web.tls.${which} (${full}): ${(err as Error).message}; give a PEM file, relative to the config file.`);
  }
}

/** One error shape: `{ "error": { code, message } }` for the API and metrics, a short page otherwise. */
function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply, deps: WebDeps): FastifyReply {
  const { status, code, message } = describe(err, deps);
  if (status >= 500) deps.logger.error('request failed', { method: request.method, url: request.url.split('?')[0], error: (err as Error).message, stack: (err as Error).stack });
  // A program (bearer token) gets JSON wherever it asked.
  if (wantsJson(request) || request.headers.authorization !== undefined) {
    const body: ErrorBody = { error: { code, message } };
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  }
  return reply.code(status).type('text/html; charset=utf-8').send(messagePage(`Error ${status}`, message, { href: '/', text: 'Back to the overview' }));
}

function describe(err: unknown, deps: WebDeps): { status: number; code: string; message: string } {
  if (err instanceof WebError) return { status: err.statusCode, code: err.code, message: err.message };
  if (err instanceof TaskmillError) return { status: STATUS_BY_CODE[err.code] ?? 500, code: err.code, message: err.message };
  if (err instanceof z.ZodError) {
    const issue = err.issues[0];
    const field = issue?.path.join('.') || 'body';
    return { status: 400, code: 'BAD_REQUEST', message: `invalid ${field}: ${issue?.message ?? 'not accepted'}` };
  }
  const e = err as FastifyError;
  if (e.code === 'FST_CSRF_MISSING_SECRET' || e.code === 'FST_CSRF_INVALID_TOKEN') {
    return { status: 403, code: 'CSRF_INVALID', message: 'the CSRF token is missing or wrong: reload the page, or send the x-csrf-token header from <meta name="csrf-token">.' };
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: `the request body is over ${deps.config.limits.payloadBytes + BODY_OVERHEAD_BYTES} bytes: a task's payload may be at most limits.payload (${deps.config.limits.payloadBytes} bytes).` };
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, code: 'BAD_REQUEST', message: e.message };
  }
  return { status: 500, code: 'INTERNAL', message: 'the request failed on the server; the Web log has the details.' };
}
