// One API route, declared once: its method and path, whether it writes (admin only), and a zod schema
// per input (path parameters, query string, body). The same declaration registers the route, validates
// its input once, and documents it in the OpenAPI document (openapi.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireAdmin } from '../auth/roles.js';
import { WebError } from '../errors.js';
import type { Principal, WebDeps } from '../types.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  deps: WebDeps;
  principal: Principal;
  reply: FastifyReply;
}

export interface ApiRoute<P = unknown, Q = unknown, B = unknown> {
  method: Method;
  /** fastify's pattern: "/api/tasks/:id". */
  path: string;
  summary: string;
  /** Changes something: admins only (a viewer gets 403). */
  write: boolean;
  /** Grouping in the OpenAPI document. */
  tag: 'tasks' | 'schedules' | 'system';
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** The 2xx answer's shape, for the document. */
  response?: z.ZodType;
  /** 200 unless said otherwise (201 for what is created). */
  status?: number;
  /** Largest body in bytes, when it differs from the server's (a batch of tasks). */
  bodyLimit?: number;
  handler(input: RouteInput<P, Q, B>): Promise<unknown>;
}

/** Keeps each route's input types tied to its schemas while the table holds them all. */
export function route<P = undefined, Q = undefined, B = undefined>(r: ApiRoute<P, Q, B>): ApiRoute {
  return r as unknown as ApiRoute;
}

/** Validates one part of the request; a problem is a 400 that names the field. */
function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: 'path' | 'query' | 'body'): T {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? `${where === 'body' ? '' : `${where} `}field "${issue.path.join('.')}"` : where === 'body' ? 'body' : `${where}`;
  throw new WebError(400, 'BAD_REQUEST', `invalid ${field}: ${issue?.message ?? 'not accepted'}`);
}

export function registerRoutes(app: FastifyInstance, deps: WebDeps, routes: readonly ApiRoute[]): void {
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.path,
      ...(r.bodyLimit ? { bodyLimit: r.bodyLimit } : {}),
      ...(r.write ? { preHandler: requireAdmin } : {}),
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const params = parse(r.params, request.params, 'path');
        const query = parse(r.query, request.query, 'query');
        const body = parse(r.body, request.body, 'body');
        const result = await r.handler({ params, query, body, deps, principal: request.principal, reply });
        if (reply.sent) return reply;
        reply.code(r.status ?? 200);
        return result === undefined ? reply.send() : reply.send(result);
      },
    });
  }
}
