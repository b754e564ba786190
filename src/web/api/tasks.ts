// API routes for single tasks: add one, add a batch, read one, cancel, retry.
import { formatSize } from '../../config/size.js';
import { TaskNotFoundError } from '../../model/errors.js';
import { WebError } from '../errors.js';
import type { WebDeps } from '../types.js';
import { type ApiRoute, route } from './route.js';
import { batchBody, idParams, MAX_BATCH, taskJson, taskSpec } from './schemas.js';

/** A payload over limits.payload is a 413 (the client would say 400): the request is too large, not wrong. */
function checkPayloadSize(deps: WebDeps, name: string, payload: unknown): void {
  const limit = deps.config.limits.payloadBytes;
  const text = JSON.stringify(payload ?? {});
  if (text !== undefined && text.length > limit / 3 && Buffer.byteLength(text, 'utf8') > limit) {
    throw new WebError(
      413,
      'PAYLOAD_TOO_LARGE',
      `the payload of "${name}" is ${formatSize(Buffer.byteLength(text, 'utf8'))} of JSON, over limits.payload (${formatSize(limit)}): store large data elsewhere and pass a reference.`,
    );
  }
}

export function taskRoutes(deps: WebDeps): ApiRoute[] {
  const payloadBytes = deps.config.limits.payloadBytes;
  return [
    route({
      method: 'POST',
      path: '/api/tasks',
      tag: 'tasks',
      summary: 'Add a task',
      write: true,
      status: 201,
      body: taskSpec,
      response: taskJson,
      handler: async ({ body, deps }) => {
        checkPayloadSize(deps, body.name, body.payload);
        return deps.mill.add(body.name, body.payload ?? {}, body.options ?? {});
      },
    }),
    route({
      method: 'POST',
      path: '/api/tasks/batch',
      tag: 'tasks',
      summary: `Add up to ${MAX_BATCH} tasks in one transaction (all or none)`,
      write: true,
      status: 201,
      body: batchBody,
      // Room for a full batch of average tasks, and for one task of the largest payload.
      bodyLimit: Math.max(16 * 1_048_576, payloadBytes + 64 * 1024),
      handler: async ({ body, deps }) => {
        for (const t of body.tasks) checkPayloadSize(deps, t.name, t.payload);
        return { tasks: await deps.mill.addMany(body.tasks) };
      },
    }),
    route({
      method: 'GET',
      path: '/api/tasks/:id',
      tag: 'tasks',
      summary: 'One task with every field (result, output, error and stack included)',
      write: false,
      params: idParams,
      response: taskJson,
      handler: async ({ params, deps }) => {
        const task = await deps.mill.get(params.id);
        if (!task) throw new TaskNotFoundError(params.id);
        return task;
      },
    }),
    route({
      method: 'POST',
      path: '/api/tasks/:id/cancel',
      tag: 'tasks',
      summary: 'Cancel a task: a WAITING one at once, a STARTED one once its handler stops (409 if it has ended)',
      write: true,
      params: idParams,
      response: taskJson,
      handler: async ({ params, deps }) => deps.mill.cancel(params.id),
    }),
    route({
      method: 'POST',
      path: '/api/tasks/:id/retry',
      tag: 'tasks',
      summary: 'Retry a FAILED or CANCELLED task with a fresh attempt budget (409 otherwise)',
      write: true,
      params: idParams,
      response: taskJson,
      handler: async ({ params, deps }) => deps.mill.retry(params.id),
    }),
  ];
}
