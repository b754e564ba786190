// How a page is served: the shell around it, its live parts as JSON for the script, flash messages
// carried over a redirect (POST-redirect-GET). Writes are guarded by the server's requireAdmin.
import type {} from '@fastify/cookie';
import type {} from '@fastify/csrf-protection';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Taskmill } from '../../client/taskmill.js';
import { TaskmillError } from '../../model/errors.js';
import type { SafeHtml } from '../html.js';
import type { Principal, WebDeps } from '../types.js';
import { type Flash, type Nav, layout } from './layout.js';
import { daemonNotice } from './notice.js';

export interface PageContext {
  deps: WebDeps;
  mill: Taskmill;
  principal: Principal;
  csrf: string;
  now: Date;
  query: Record<string, string | string[] | undefined>;
  /** The path and query of this page, to come back to after a write. */
  url: string;
}

export interface PageResult {
  title: string;
  nav: Nav;
  body: SafeHtml;
  /** The live parts (also inside `body`), sent alone when the script asks for them. */
  regions?: Record<string, SafeHtml>;
  status?: number;
}

const FLASH_COOKIE = 'taskmill_flash';

export function context(deps: WebDeps, request: FastifyRequest, reply: FastifyReply): PageContext {
  return {
    deps,
    mill: deps.mill,
    principal: request.principal,
    csrf: reply.generateCsrf(),
    now: deps.clock.now(),
    query: (request.query ?? {}) as PageContext['query'],
    url: request.url,
  };
}

function takeFlash(request: FastifyRequest, reply: FastifyReply): Flash | null {
  const raw = request.cookies?.[FLASH_COOKIE];
  if (!raw) return null;
  reply.clearCookie(FLASH_COOKIE, { path: '/' });
  try {
    const f = JSON.parse(raw) as Flash;
    return (f.kind === 'ok' || f.kind === 'error') && typeof f.text === 'string' ? { kind: f.kind, text: f.text.slice(0, 2000) } : null;
  } catch {
    return null;
  }
}

/** Redirects (303, so the browser GETs) with a message shown once on the next page. */
export function redirectWithFlash(reply: FastifyReply, to: string, flash: Flash): FastifyReply {
  reply.setCookie(FLASH_COOKIE, JSON.stringify(flash), { path: '/', httpOnly: true, sameSite: 'strict', maxAge: 60 });
  return reply.redirect(to, 303);
}

/** Serves a page: the whole document, or (header `x-live: 1`) its live parts and the notice as JSON. */
export function page(
  app: FastifyInstance,
  deps: WebDeps,
  path: string,
  handler: (ctx: PageContext, request: FastifyRequest, reply: FastifyReply) => Promise<PageResult | null>,
): void {
  app.get(path, async (request, reply) => {
    const ctx = context(deps, request, reply);
    const [status, result] = await Promise.all([ctx.mill.daemonStatus(), handler(ctx, request, reply)]);
    if (result === null) return reply;
    const notice = daemonNotice(deps.config, ctx.principal, status, ctx.now);
    reply.header('cache-control', 'no-store').header('vary', 'x-live');
    if (request.headers['x-live'] === '1') {
      const regions: Record<string, string> = { notice: notice.value };
      for (const [id, content] of Object.entries(result.regions ?? {})) regions[id] = content.value;
      return reply.type('application/json; charset=utf-8').send(JSON.stringify({ regions }));
    }
    const flash = takeFlash(request, reply);
    const doc = layout({ ...result, principal: ctx.principal, csrf: ctx.csrf, notice, flash });
    return reply
      .code(result.status ?? 200)
      .type('text/html; charset=utf-8')
      .send(doc.value);
  });
}

/** A write's error as the message to flash: ours say what to do; anything else is logged and summarized. */
export function errorText(deps: WebDeps, err: unknown): string {
  if (err instanceof TaskmillError) return err.message;
  deps.logger.error('admin page action failed', { error: (err as Error)?.message });
  return `Something went wrong: ${(err as Error)?.message ?? String(err)}`;
}

/** A form field as one string ('' when absent). */
export function field(body: unknown, name: string): string {
  const v = (body as Record<string, unknown> | null | undefined)?.[name];
  if (Array.isArray(v)) return String(v[0] ?? '').trim();
  return typeof v === 'string' ? v.trim() : '';
}

/** A form field that may repeat (checkboxes), as strings. */
export function fields(body: unknown, name: string): string[] {
  const v = (body as Record<string, unknown> | null | undefined)?.[name];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map((x) => String(x));
}
