// Built-in module Web: serves the admin page, the HTTP API and /metrics (src/web/) under the
// supervisor. A port already taken is not a crash: the module logs why and tries again after a
// growing delay (2 s doubling to 1 min), staying up, so the supervisor does not restart it hot.
import { isoSeconds } from '../../model/clock.js';
import { serveWeb, type Serving } from '../../web/serve.js';
import type { DaemonModule, ModuleContext } from '../module.js';

export const settings = { sleep: '1s' };

const FIRST_RETRY_MS = 2_000;
const MAX_RETRY_MS = 60_000;

export default function webModule(ctx: ModuleContext): DaemonModule {
  let serving: Serving | null = null;
  let since: Date | null = null;
  let retryMs = FIRST_RETRY_MS;
  let nextTry = 0;
  let lastError: string | null = null;
  return {
    async run() {
      if (serving || Date.now() < nextTry) return true;
      const { host, port } = ctx.config.web;
      try {
        serving = await serveWeb({ mill: await ctx.mill(), logger: ctx.log });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        lastError =
          e.code === 'EADDRINUSE'
            ? `port ${port} on ${host} is taken by another program: stop it, or set web.port in the config (next try in ${retryMs / 1000} s)`
            : e.code === 'EACCES'
              ? `not allowed to listen on ${host}:${port}: use a port above 1023, or web.host 127.0.0.1 (next try in ${retryMs / 1000} s)`
              : `${e.message} (next try in ${retryMs / 1000} s)`;
        ctx.log.error(`cannot serve the admin page: ${lastError}`, { host, port, code: e.code });
        nextTry = Date.now() + retryMs;
        retryMs = Math.min(MAX_RETRY_MS, retryMs * 2);
        return true;
      }
      since = new Date();
      retryMs = FIRST_RETRY_MS;
      lastError = null;
      ctx.log.info(`serving the admin page and API on ${serving.url}`);
      ctx.reportWeb?.(serving.url, serving.loginLink);
      return true;
    },
    async stop() {
      const s = serving;
      serving = null;
      await s?.server.stop();
      ctx.reportWeb?.(null, null);
    },
    summary() {
      return {
        header: 'Web (admin page, HTTP API, /metrics)',
        columns: [
          { name: 'url', displayName: 'Address', size: 30 },
          { name: 'since', displayName: 'Since', size: 20 },
          { name: 'error', displayName: 'Last error', size: 60 },
        ],
        rows: serving || lastError
          ? [{ url: serving?.url ?? null, since: since ? isoSeconds(since) : null, error: lastError }]
          : [],
        noDataMessage: 'Not serving yet.',
      };
    },
  };
}
