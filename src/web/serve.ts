// Starts the web server with everything it serves (pages, API, metrics), and while nobody can log in
// (no user, no token) makes a one-time login link. Shared by the Web daemon module and `taskmill web`.
import type { Taskmill } from '../client/taskmill.js';
import { systemClock, type Clock } from '../model/clock.js';
import type { Logger } from '../model/logger.js';
import { registerApi } from './api/index.js';
import { registerMetrics } from './metrics.js';
import { createWebServer, type WebServer, type WebServerOptions } from './server.js';

export interface ServeOptions extends Pick<WebServerOptions, 'host' | 'port' | 'pages'> {
  mill: Taskmill;
  logger: Logger;
  clock?: Clock;
}

export interface Serving {
  server: WebServer;
  url: string;
  /** The one-time login link, when one was made (nobody could log in yet). */
  loginLink: string | null;
}

export async function serveWeb(o: ServeOptions): Promise<Serving> {
  const deps = { mill: o.mill, config: o.mill.config, logger: o.logger, clock: o.clock ?? systemClock };
  const server = createWebServer(deps, { host: o.host, port: o.port, pages: o.pages, plugins: [registerApi, registerMetrics] });
  const { url } = await server.start();
  let loginLink: string | null = null;
  try {
    if (await o.mill.auth.needsSetup()) loginLink = `${url}login/link/${await o.mill.auth.createLoginLink()}`;
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { server, url, loginLink };
}


