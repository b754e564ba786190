// What the web edge shares between its parts: the server (auth, API) and the pages.
import type { FastifyPluginAsync } from 'fastify';
import type { Taskmill } from '../client/taskmill.js';
import type { Config } from '../config/schema.js';
import type { Clock } from '../model/clock.js';
import type { Logger } from '../model/logger.js';

export type Role = 'admin' | 'viewer';

/** Who is making a request, once authenticated. */
export interface Principal {
  /** A browser session (cookie, CSRF-protected) or a bearer token (programs). */
  kind: 'session' | 'token';
  /** The user's name, or the token's label. */
  name: string;
  /** The effective role (`web.readOnly` makes every principal a viewer). */
  role: Role;
}

/** Everything a route needs; data comes only from the client, never from a store. */
export interface WebDeps {
  mill: Taskmill;
  config: Config;
  logger: Logger;
  clock: Clock;
}

/** The pages' plugin (default export of src/web/pages/index.ts), registered by the server. */
export type PagesPlugin = FastifyPluginAsync<{ deps: WebDeps }>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the server's authentication hook on every route that is not public. */
    principal: Principal;
  }
}
