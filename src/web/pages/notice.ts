// The daemon-not-running notice: a banner on every page (for the roles in web.daemonNotice.roles) that
// opens how to bring the daemon up on this installation, where its logs are and its last error.
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import { daemonPaths } from '../../daemon/protocol.js';
import { html, type SafeHtml } from '../html.js';
import type { Principal, Role } from '../types.js';
import { formatTime, time } from './format.js';
import type { DaemonStatus } from '../../model/query.js';

/** The roles that see the notice: `web.daemonNotice.roles`, admin when unset. */
export function noticeRoles(config: Config): readonly Role[] {
  return config.web.daemonNotice.roles;
}

/** A path or argument quoted for a POSIX shell when it needs it. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The exact commands that start the daemon here, and keep it started from cron. */
export function startCommands(config: Config): { start: string; cron: string } {
  const cli = `cd ${shellQuote(config.baseDir)} && npx taskmill${config.file ? ` --config ${shellQuote(config.file)}` : ''}`;
  return { start: `${cli} start`, cron: `* * * * * ${cli} watchdog >/dev/null 2>&1` };
}

export interface LoggedError {
  at: Date | null;
  message: string;
}

const TAIL_BYTES = 256 * 1024;

/**
 * The last line of level error or worse in the main daemon's log (Main.log, pino JSON lines), read
 * from the file's tail so a large log costs the same as a small one; null when there is none here.
 */
export function lastMainError(varDir: string): LoggedError | null {
  const file = path.join(daemonPaths(varDir).logDir, 'Main.log');
  if (!existsSync(file)) return null;
  const size = statSync(file).size;
  const length = Math.min(size, TAIL_BYTES);
  const buffer = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, length, size - length);
  } finally {
    closeSync(fd);
  }
  const lines = buffer.toString('utf8').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim();
    if (!line || !line.startsWith('{')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue; // the first line of the tail may be cut
    }
    if (typeof entry.level !== 'number' || entry.level < 50) continue;
    const { time: at, msg, ...context } = entry;
    delete context.level;
    const details = Object.entries(context).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    return {
      at: typeof at === 'number' ? new Date(at) : null,
      message: [String(msg ?? ''), ...details].filter(Boolean).join(' · '),
    };
  }
  return null;
}

/** The banner (empty when a daemon runs or the principal's role is not one that is told). */
export function daemonNotice(config: Config, principal: Principal, status: DaemonStatus, now: Date): SafeHtml {
  if (status.running || !noticeRoles(config).includes(principal.role)) return html``;
  const { start, cron } = startCommands(config);
  const paths = daemonPaths(config.varDir);
  let lastError: LoggedError | null = null;
  let readProblem: string | null = null;
  try {
    lastError = lastMainError(config.varDir);
  } catch (err) {
    readProblem = (err as Error).message;
  }
  const since = status.since
    ? html`No daemon has sent a heartbeat since ${time(status.since, now)}${status.hosts.length ? html` (last seen on ${status.hosts.join(', ')})` : ''}.`
    : html`No daemon has ever sent a heartbeat to this database.`;
  return html`<section class="notice" role="alert" aria-labelledby="notice-title">
  <details>
    <summary><strong id="notice-title">The taskmill daemon is not running.</strong> Tasks are not being run and schedules do not fire. <span class="notice-more">How to start it</span></summary>
    <div class="notice-body">
      <p>${since}</p>
      <h2>Start it</h2>
      <p>On the host that should run tasks, as the user that owns the installation:</p>
      <pre class="cmd"><code>${start}</code></pre>
      <h2>Keep it running</h2>
      <p>Add this line to that user's crontab (<code>crontab -e</code>); it starts the daemon whenever it is not running and does nothing otherwise:</p>
      <pre class="cmd"><code>${cron}</code></pre>
      <h2>Logs</h2>
      <p>The main daemon writes <code>${path.join(paths.logDir, 'Main.log')}</code>; each module has its own <code>NAME.log</code> beside it, and what the modules print goes to <code>${paths.outFile}</code>.</p>
      <h2>Last error the main daemon logged</h2>
      ${
        lastError
          ? html`<pre class="error-text">${lastError.at ? `${formatTime(lastError.at)} UTC  ` : ''}${lastError.message}</pre>`
          : readProblem
            ? html`<p>Could not read the log: ${readProblem}</p>`
            : html`<p class="muted">None found in <code>${path.join(paths.logDir, 'Main.log')}</code> on this host.</p>`
      }
    </div>
  </details>
</section>`;
}
