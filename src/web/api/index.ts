// The JSON API under /api/: the route table (tasks, schedules, system) and its OpenAPI document.
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { WebDeps } from '../types.js';
import { openApiDocument } from './openapi.js';
import { type ApiRoute, registerRoutes } from './route.js';
import { scheduleRoutes } from './schedules.js';
import { systemRoutes } from './system.js';
import { taskQueryRoutes } from './task-queries.js';
import { taskRoutes } from './tasks.js';

export const OPENAPI_PATH = '/api/openapi.json';

export function apiRoutes(deps: WebDeps): ApiRoute[] {
  return [...taskRoutes(deps), ...taskQueryRoutes(), ...scheduleRoutes(), ...systemRoutes()];
}

export function registerApi(app: FastifyInstance, deps: WebDeps): void {
  const routes = apiRoutes(deps);
  registerRoutes(app, deps, routes);
  const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const document = openApiDocument(routes, version);
  // The document itself is behind authentication as well: it tells what this installation offers.
  app.get(OPENAPI_PATH, async () => document);
}
