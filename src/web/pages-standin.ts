// Used only while the pages plugin (src/web/pages/index.ts) is not part of the build: a bare home
// page, so that logging in has somewhere to land.
import { html } from './html.js';
import type { PagesPlugin } from './types.js';

const standIn: PagesPlugin = async (app) => {
  app.get('/', async (request, reply) =>
    reply.type('text/html; charset=utf-8').send(
      html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>taskmill</title></head>
<body><main><h1>taskmill</h1><p>Logged in as ${request.principal.name} (${request.principal.role}).</p>
<form method="post" action="/logout"><input type="hidden" name="_csrf" value="${reply.generateCsrf()}"><button>Log out</button></form>
<p>The API is documented at <a href="/api/openapi.json">/api/openapi.json</a>.</p></main></body></html>`.toString(),
    ),
  );
};

export default standIn;
