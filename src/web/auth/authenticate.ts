// The one authentication hook: every request but the few public routes must carry a bearer token or a
// session cookie. Pages without one are sent to /login; the API and /metrics answer 401 JSON. Every
// non-GET request authenticated by its cookie must also carry a CSRF token (a token request need not:
// a browser never attaches one by itself).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../types.js';
import type { WebDeps } from '../types.js';
import { WebError } from '../errors.js';

export const SESSION_COOKIE = 'taskmill_session';

/** Routes anyone may reach, as "METHOD pattern" (fastify's route pattern, so no path trick matches). */
const PUBLIC_ROUTES = new Set([
  'GET /login',
  'HEAD /login',
  'POST /login',
  'GET /login/link/:secret',
  'HEAD /login/link/:secret',
  'GET /healthz',
  'HEAD /healthz',
  'GET /assets/*',
  'HEAD /assets/*',
]);

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isPublic(request: FastifyRequest): boolean {
  const pattern = request.routeOptions.url;
  return pattern !== undefined && PUBLIC_ROUTES.has(`${request.method} ${pattern}`);
}

/** The API and metrics speak JSON; everything else is a page. */
export function wantsJson(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0] ?? '';
  return path === '/api' || path.startsWith('/api/') || path === '/metrics';
}

/** Who the request comes from, or null: a bearer token first, else the session cookie. */
async function principalOf(request: FastifyRequest, deps: WebDeps): Promise<Principal | null> {
  const { auth } = deps.mill;
  const header = request.headers.authorization;
  const readOnly = deps.config.web.readOnly;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const token = match?.[1] ? await auth.checkToken(match[1]) : null;
    // A wrong token is refused even where a cookie would do: a program must learn its token is bad.
    if (!token) throw new WebError(401, 'UNAUTHENTICATED', 'the bearer token is unknown or revoked; create one with "taskmill token create".');
    return { kind: 'token', name: token.label ?? `token ${token.id}`, role: readOnly ? 'viewer' : token.role };
  }
  const sessionId = request.cookies[SESSION_COOKIE];
  if (sessionId) {
    const session = await auth.session(sessionId);
    if (session) return { kind: 'session', name: session.name, role: readOnly ? 'viewer' : session.role };
  }
  return null;
}

export function registerAuthentication(app: FastifyInstance, deps: WebDeps): void {
  app.decorateRequest('principal', null as unknown as Principal);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (isPublic(request)) return;
    const principal = await principalOf(request, deps);
    if (principal) {
      request.principal = principal;
      return;
    }
    if (wantsJson(request)) {
      throw new WebError(401, 'UNAUTHENTICATED', 'log in, or send "Authorization: Bearer TOKEN" (see "taskmill token create").');
    }
    // A page: to the login form, which comes back here afterwards (a form post comes back to its page).
    const target = request.method === 'GET' ? request.url : refererPath(request.headers.referer);
    return reply.redirect(`/login?next=${encodeURIComponent(safeNext(target))}`, 303);
  });

  // After the body is parsed, so the `_csrf` form field can be read. The public login form is
  // protected too (no one is logged in to someone else's account by a forged post).
  app.addHook('preHandler', (request, reply, done) => {
    if (SAFE_METHODS.has(request.method) || request.principal?.kind === 'token') return done();
    app.csrfProtection(request, reply, done);
  });
}

/** A local path to return to after login: never another site ("//evil", "/\\evil", "https:…"). */
export function safeNext(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  for (let i = 0; i < next.length; i++) if (next.charCodeAt(i) < 0x20) return '/';
  return next.length > 2000 ? '/' : next;
}

function refererPath(referer: string | undefined): string {
  try {
    return referer ? new URL(referer).pathname : '/';
  } catch {
    return '/';
  }
}
