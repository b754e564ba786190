// API routes about the installation rather than tasks: who am I, the daemons, the task names.
import { z } from 'zod';
import { type ApiRoute, route } from './route.js';
import { daemonJson } from './schemas.js';

export function systemRoutes(): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/api/me',
      tag: 'system',
      summary: 'Who the request is authenticated as, and the role it acts with',
      write: false,
      response: z.object({ kind: z.enum(['session', 'token']), name: z.string(), role: z.enum(['admin', 'viewer']) }),
      handler: async ({ principal }) => principal,
    }),
    route({
      method: 'GET',
      path: '/api/daemons',
      tag: 'system',
      summary: 'The daemons of the cluster from their heartbeats (stale: not seen for a minute)',
      write: false,
      response: z.object({ daemons: z.array(daemonJson) }),
      handler: async ({ deps }) => ({ daemons: await deps.mill.daemons() }),
    }),
  ];
}
