// API routes over many tasks: the list (filters, sort, keyset cursor), counts, bulk actions, delete,
// dependants, statistics; and the task names and payload schemas the add form offers.
import { z } from 'zod';
import { DEFAULT_COUNT_CAP } from '../../client/queries.js';
import { TaskNotFoundError } from '../../model/errors.js';
import { WebError } from '../errors.js';
import { type ApiRoute, route } from './route.js';
import { bulkBody, countQuery, idParams, schemaQuery, taskJson, taskPage, taskQuery } from './schemas.js';

const counts = z.record(z.string(), z.number().int());

export function taskQueryRoutes(): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/api/tasks',
      tag: 'tasks',
      summary: 'A page of tasks: filter by status (comma-separated), name, queue, schedule, time range and text; sort, order, limit (≤ 500) and the cursor of the previous page',
      write: false,
      query: taskQuery,
      response: taskPage,
      handler: async ({ query, deps }) => deps.mill.query(query),
    }),
    route({
      method: 'GET',
      path: '/api/tasks/count',
      tag: 'tasks',
      summary: 'How many tasks match the filter, counting no further than cap (default 10,000): cap means "at least"',
      write: false,
      query: countQuery,
      response: z.object({ count: z.number().int(), capped: z.boolean() }),
      handler: async ({ query, deps }) => {
        const { cap, ...filter } = query;
        const count = await deps.mill.count(filter, cap);
        return { count, capped: count >= (cap ?? DEFAULT_COUNT_CAP) };
      },
    }),
    route({
      method: 'POST',
      path: '/api/tasks/bulk',
      tag: 'tasks',
      summary: 'Retry, cancel or delete the tasks given by "ids", or every task matching "filter"; those that cannot take the action are skipped',
      write: true,
      body: bulkBody,
      response: z.object({ matched: z.number().int(), changed: z.number().int() }),
      handler: async ({ body, deps }) => deps.mill.bulk(body.action, 'ids' in body ? { ids: body.ids } : { filter: body.filter }),
    }),
    route({
      method: 'DELETE',
      path: '/api/tasks/:id',
      tag: 'tasks',
      summary: 'Delete a task for good (409 while it runs or while live tasks depend on it)',
      write: true,
      params: idParams,
      status: 204,
      handler: async ({ params, deps }) => {
        if (!(await deps.mill.get(params.id))) throw new TaskNotFoundError(params.id);
        await deps.mill.delete(params.id);
      },
    }),
    route({
      method: 'GET',
      path: '/api/tasks/:id/dependants',
      tag: 'tasks',
      summary: 'The tasks that wait for this one',
      write: false,
      params: idParams,
      response: z.object({ tasks: z.array(taskJson) }),
      handler: async ({ params, deps }) => {
        if (!(await deps.mill.get(params.id))) throw new TaskNotFoundError(params.id);
        return { tasks: await deps.mill.dependants(params.id) };
      },
    }),
    route({
      method: 'GET',
      path: '/api/stats',
      tag: 'tasks',
      summary: 'Counts by status and by queue, completed and failed per minute over the last hour, the latest failures',
      write: false,
      response: z.object({
        byStatus: counts,
        byQueue: z.array(z.object({ queue: z.string(), counts })),
        perMinute: z.array(z.object({ minute: z.string(), completed: z.number().int(), failed: z.number().int() })),
        latestFailures: z.array(taskJson),
      }),
      handler: async ({ deps }) => deps.mill.stats(),
    }),
    route({
      method: 'GET',
      path: '/api/daemon-status',
      tag: 'system',
      summary: 'Whether a daemon runs (a recent heartbeat), since when, on which hosts',
      write: false,
      response: z.object({ running: z.boolean(), since: z.string().nullable(), hosts: z.array(z.string()), daemons: z.array(z.unknown()) }),
      handler: async ({ deps }) => deps.mill.daemonStatus(),
    }),
    route({
      method: 'GET',
      path: '/api/task-names',
      tag: 'system',
      summary: 'The task names with a handler in the tasks folder (files starting with "_" left out)',
      write: false,
      response: z.object({ names: z.array(z.string()) }),
      handler: async ({ deps }) => ({ names: deps.mill.taskNames() }),
    }),
    route({
      method: 'GET',
      path: '/api/task-schema',
      tag: 'system',
      summary: 'The JSON Schema of a task\'s payload (when its handler exports one) and an example; 404 for an unknown name',
      write: false,
      query: schemaQuery,
      response: z.object({ name: z.string(), jsonSchema: z.unknown(), example: z.unknown() }),
      handler: async ({ query, deps }) => {
        const info = await deps.mill.taskSchema(query.name);
        if (!info) throw new WebError(404, 'NOT_FOUND', `no task named "${query.name}" in the tasks folder; GET /api/task-names lists them.`);
        return { name: query.name.toLowerCase(), ...info };
      },
    }),
  ];
}
