// Built-in module ConfigSync: watches the config file and the tasks folder. When either changes and
// the config is valid, the main daemon restarts every module with it within seconds; an invalid
// change is logged, naming the problem, and the daemon keeps running on the last good configuration.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../config/load.js';
import type { DaemonModule, ModuleContext } from '../module.js';

export const settings = { sleep: '1s' };

export default function configSync(ctx: ModuleContext): DaemonModule {
  const file = ctx.config.file;
  let seen: string | null = null;
  let lastReported: string | null = null;
  return {
    run() {
      const now = fingerprint(file, ctx.config.tasksDir);
      if (seen === null) seen = now;
      if (now === seen) return true;
      try {
        loadConfig({ file: file ?? undefined, cwd: ctx.config.baseDir });
      } catch (err) {
        if (lastReported !== now) {
          ctx.log.error('the changed config is invalid; still running on the last good one', { error: (err as Error).message });
          lastReported = now;
        }
        return true;
      }
      ctx.log.info('the config or the tasks changed; restarting the modules with them');
      seen = now;
      ctx.requestReload();
      return true;
    },
    summary() {
      return {
        header: 'Config sync',
        columns: [
          { name: 'what', displayName: 'Watching', size: 60 },
        ],
        rows: [{ what: file ?? '(no config file: defaults)' }, { what: ctx.config.tasksDir }],
        noDataMessage: 'Nothing to watch.',
      };
    },
  };
}

/** Sizes and modification times of the config file and every file in the tasks folder. */
function fingerprint(file: string | null, tasksDir: string): string {
  const parts: string[] = [];
  const add = (p: string) => {
    try {
      const s = statSync(p);
      parts.push(`${p}:${s.size}:${s.mtimeMs}`);
      if (s.isDirectory()) for (const e of readdirSync(p).sort()) add(path.join(p, e));
    } catch {
      parts.push(`${p}:missing`);
    }
  };
  if (file) add(file);
  add(tasksDir);
  return parts.join('|');
}
