// The OpenAPI 3.1 document, made from the route table itself: every route is documented with the
// schemas that validate it, so the document cannot drift from what the server accepts.
import { z } from 'zod';
import type { ApiRoute } from './route.js';
import { errorJson } from './schemas.js';

type JsonSchema = Record<string, unknown>;

const json = (schema: z.ZodType, io: 'input' | 'output'): JsonSchema => {
  const out = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
};

/** One OpenAPI parameter per property of an object schema. */
function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const s = json(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, p]) => ({
    name,
    in: where,
    required: where === 'path' || (s.required ?? []).includes(name),
    schema: p,
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
  }));
}

const ERROR_RESPONSES = {
  '400': 'The input is wrong; the message names the field',
  '401': 'No credentials, or a wrong or revoked token',
  '404': 'No such task or schedule',
};

export function openApiDocument(routes: readonly ApiRoute[], version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const errors: Record<string, string> = { ...ERROR_RESPONSES };
    if (r.write) {
      errors['403'] = 'A viewer (or web.readOnly), or a session request without its x-csrf-token header';
      errors['409'] = 'The task cannot take this action in its status';
    }
    if (r.body) errors['413'] = 'The body, or a task\'s payload, is over the limit (limits.payload)';
    const status = String(r.status ?? 200);
    paths[path] ??= {};
    (paths[path] as Record<string, JsonSchema>)[r.method.toLowerCase()] = {
      operationId: `${r.method.toLowerCase()}${path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: r.summary,
      tags: [r.tag],
      ...(r.write ? { 'x-role': 'admin' } : { 'x-role': 'viewer' }),
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: json(r.body, 'input') } } } } : {}),
      responses: {
        [status]: status === '204'
          ? { description: 'Done' }
          : { description: 'OK', content: { 'application/json': { schema: r.response ? json(r.response, 'output') : {} } } },
        ...Object.fromEntries(
          Object.entries(errors).map(([code, description]) => [code, { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]),
        ),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'taskmill HTTP API',
      version,
      description:
        'Add, inspect and control tasks and schedules. Authenticate with "Authorization: Bearer TOKEN" ' +
        '(taskmill token create --role admin|viewer) or a browser session; session writes need the x-csrf-token header.',
    },
    security: [{ bearer: [] }, { session: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        session: { type: 'apiKey', in: 'cookie', name: 'taskmill_session' },
      },
      schemas: { Error: json(errorJson, 'output') },
    },
    paths,
  };
}
