// The page's static files (stylesheet, script, icon), served by taskmill itself from the installed
// package: no CDN, works offline. Read once at start; cached by the browser for a short while.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** src/web/assets when run from source, dist/web/assets once built (scripts/copy-assets.mjs copies it). */
export const ASSETS_DIR = fileURLToPath(new URL('../assets/', import.meta.url));

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export function registerAssets(app: FastifyInstance, dir = ASSETS_DIR): void {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, { type, body: readFileSync(path.join(dir, name)) });
  }
  // A wildcard route: the server lets `GET /assets/*` through without a login (the login page uses it).
  app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) => {
    const f = files.get(request.params['*']);
    if (!f) return reply.code(404).type('text/plain; charset=utf-8').send('no such asset');
    return reply.header('cache-control', 'public, max-age=300').type(f.type).send(f.body);
  });
}
