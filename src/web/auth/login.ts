// Logging in and out: the name + password form (rate-limited on failures), the one-time login link,
// the first administrator's form, and logout, which ends the session on the server.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LINK_SESSION_NAME } from '../../client/auth.js';
import { TaskmillError } from '../../model/errors.js';
import type { WebDeps } from '../types.js';
import { SESSION_COOKIE, safeNext } from './authenticate.js';
import { LoginLimiter } from './login-limit.js';
import { loginPage, messagePage, setupPage } from './login-page.js';
import { requireAdmin } from './roles.js';

const loginForm = z.object({
  name: z.string().max(200).default(''),
  password: z.string().max(1000).default(''),
  next: z.string().max(2000).optional(),
});
const setupForm = z.object({
  name: z.string().max(200).default(''),
  password: z.string().max(1000).default(''),
  repeat: z.string().max(1000).default(''),
});

export interface LoginOptions {
  deps: WebDeps;
  /** Cookies carry Secure under TLS. */
  secure: boolean;
}

export function registerLogin(app: FastifyInstance, { deps, secure }: LoginOptions): void {
  const { auth } = deps.mill;
  const limiter = new LoginLimiter(deps.clock);
  const ttlMs = deps.config.web.sessionTtl;

  const openSession = async (reply: FastifyReply, name: string, role: 'admin' | 'viewer') => {
    const id = await auth.createSession(name, role, ttlMs);
    reply.setCookie(SESSION_COOKIE, id, { path: '/', httpOnly: true, sameSite: 'strict', secure, maxAge: Math.floor(ttlMs / 1000) });
  };
  const page = (reply: FastifyReply, status: number, body: string) => reply.code(status).type('text/html; charset=utf-8').send(body);

  app.get('/login', async (request: FastifyRequest<{ Querystring: { next?: string } }>, reply) => {
    const next = safeNext(request.query.next);
    const sessionId = request.cookies[SESSION_COOKIE];
    if (sessionId && (await auth.session(sessionId))) return reply.redirect(next, 303);
    return page(reply, 200, loginPage({ csrf: reply.generateCsrf(), next }));
  });

  app.post('/login', async (request, reply) => {
    const form = loginForm.parse(request.body ?? {});
    const next = safeNext(form.next);
    const keys = [`address:${request.ip}`, `name:${form.name.toLowerCase()}`];
    const wait = limiter.retryAfter(keys);
    if (wait > 0) {
      const minutes = Math.ceil(wait / 60_000);
      reply.header('retry-after', String(Math.ceil(wait / 1000)));
      deps.logger.warn('login refused: too many failed attempts', { address: request.ip, name: form.name });
      return page(reply, 429, loginPage({
        csrf: reply.generateCsrf(), next, name: form.name,
        error: `Too many failed logins; try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
      }));
    }
    const user = await auth.checkPassword(form.name, form.password);
    if (!user) {
      limiter.fail(keys);
      // The name is logged (it helps tell an attack from a typo); the password never is.
      deps.logger.warn('failed login', { address: request.ip, name: form.name });
      return page(reply, 401, loginPage({ csrf: reply.generateCsrf(), next, name: form.name, error: 'Wrong name or password.' }));
    }
    limiter.succeed(keys);
    await openSession(reply, user.name, user.role);
    deps.logger.info('login', { name: user.name, address: request.ip });
    return reply.redirect(next, 303);
  });

  app.get('/login/link/:secret', async (request: FastifyRequest<{ Params: { secret: string } }>, reply) => {
    if (!(await auth.useLoginLink(request.params.secret))) {
      return page(reply, 410, messagePage('Link used or expired', 'This login link was used already or has expired. Log in with a name and password, or restart taskmill while no user exists for a new link.'));
    }
    await openSession(reply, LINK_SESSION_NAME, 'admin');
    deps.logger.info('logged in with the one-time login link', { address: request.ip });
    return reply.redirect((await auth.needsSetup()) ? '/setup' : '/', 303);
  });

  app.get('/setup', { preHandler: requireAdmin }, async (_request, reply) => page(reply, 200, setupPage({ csrf: reply.generateCsrf() })));

  app.post('/setup', { preHandler: requireAdmin }, async (request, reply) => {
    const form = setupForm.parse(request.body ?? {});
    const again = (error: string) => page(reply, 400, setupPage({ csrf: reply.generateCsrf(), name: form.name, error }));
    if (form.password !== form.repeat) return again('The two passwords differ.');
    try {
      await auth.addUser(form.name, form.password, 'admin');
    } catch (err) {
      if (err instanceof TaskmillError && err.code === 'INVALID_INPUT') return again(err.message);
      throw err;
    }
    deps.logger.info('user added through the page', { name: form.name, by: request.principal.name });
    return reply.redirect('/', 303);
  });

  app.post('/logout', async (request, reply) => {
    const sessionId = request.cookies[SESSION_COOKIE];
    if (sessionId) await auth.endSession(sessionId);
    reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure });
    return reply.redirect('/login', 303);
  });
}
