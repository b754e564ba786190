// API routes for recurring schedules: list, save (create or change), pause, resume, run now, remove.
// Schedules from the config file are read-only here (the client refuses a change with a 400).
import { z } from 'zod';
import type { Taskmill } from '../../client/taskmill.js';
import { WebError } from '../errors.js';
import { type ApiRoute, route } from './route.js';
import { nameParams, scheduleBody, scheduleJson, taskJson } from './schemas.js';

/** An unknown schedule is a 404 (the client says 400: to it, a wrong name is bad input). */
async function requireSchedule(mill: Taskmill, name: string): Promise<void> {
  if (!(await mill.schedules()).some((s) => s.name === name)) {
    throw new WebError(404, 'NOT_FOUND', `no schedule named "${name}"; list them with GET /api/schedules.`);
  }
}

export function scheduleRoutes(): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/api/schedules',
      tag: 'schedules',
      summary: 'Every schedule with its rule, last run, last skip and next three runs',
      write: false,
      response: z.object({ schedules: z.array(scheduleJson) }),
      handler: async ({ deps }) => ({ schedules: await deps.mill.schedules() }),
    }),
    route({
      method: 'PUT',
      path: '/api/schedules/:name',
      tag: 'schedules',
      summary: 'Create or change a schedule ("every" or "cron" with "timezone")',
      write: true,
      params: nameParams,
      body: scheduleBody,
      response: scheduleJson,
      handler: async ({ params, body, deps }) => deps.mill.schedule(params.name, body),
    }),
    route({
      method: 'POST',
      path: '/api/schedules/:name/pause',
      tag: 'schedules',
      summary: 'Pause a schedule',
      write: true,
      params: nameParams,
      response: scheduleJson,
      handler: async ({ params, deps }) => {
        await requireSchedule(deps.mill, params.name);
        return deps.mill.setScheduleEnabled(params.name, false);
      },
    }),
    route({
      method: 'POST',
      path: '/api/schedules/:name/resume',
      tag: 'schedules',
      summary: 'Resume a paused schedule (it counts from now: no burst of missed runs)',
      write: true,
      params: nameParams,
      response: scheduleJson,
      handler: async ({ params, deps }) => {
        await requireSchedule(deps.mill, params.name);
        return deps.mill.setScheduleEnabled(params.name, true);
      },
    }),
    route({
      method: 'POST',
      path: '/api/schedules/:name/run',
      tag: 'schedules',
      summary: 'Fire one occurrence now; returns the task',
      write: true,
      status: 201,
      params: nameParams,
      response: taskJson,
      handler: async ({ params, deps }) => {
        await requireSchedule(deps.mill, params.name);
        return deps.mill.runSchedule(params.name);
      },
    }),
    route({
      method: 'DELETE',
      path: '/api/schedules/:name',
      tag: 'schedules',
      summary: 'Remove a schedule made through the API, CLI or page (its past tasks stay)',
      write: true,
      params: nameParams,
      status: 204,
      handler: async ({ params, deps }) => {
        await requireSchedule(deps.mill, params.name);
        await deps.mill.unschedule(params.name);
      },
    }),
  ];
}
