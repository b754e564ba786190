// `taskmill status [--json]`: exit 0 when the daemon runs, 3 when not (the LSB convention).
import type { Command } from 'commander';
import { HEARTBEAT_STALE_MS, type DaemonHeartbeat } from '../../model/daemon.js';
import { askDaemon } from '../../daemon/control-socket.js';
import { findDaemon } from '../../daemon/pid-file.js';
import type { DaemonStatus } from '../../daemon/supervisor.js';
import { openStore } from '../../store/open.js';
import { configForControl } from '../open.js';
import { formatDaemonStatus, printJson, printLine } from '../output.js';

export const EXIT_NOT_RUNNING = 3;

export function statusCommand(program: Command): void {
  program
    .command('status')
    .description('is the daemon running? its modules, and the other daemons of the cluster (exit 0 running, 3 not)')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, command: Command) => {
      const config = configForControl(command);
      const { pid } = await findDaemon(config.varDir);
      let local: DaemonStatus | null = null;
      if (pid !== null) {
        try {
          local = await askDaemon<DaemonStatus>(config.varDir, 'status', 5_000);
        } catch {
          local = { pid, host: '', startedAt: '', configFile: config.file, modules: [] };
        }
      }
      const cluster = await clusterDaemons(config.database);
      if (flags.json) {
        printJson({ running: pid !== null, daemon: local, cluster });
      } else {
        printLine(formatDaemonStatus(local, cluster, HEARTBEAT_STALE_MS));
        if (local?.web) printLine(`admin page and API: ${local.web}`);
      }
      if (pid === null) process.exitCode = EXIT_NOT_RUNNING;
    });
}

/** The daemons with a heartbeat in the database; null when it cannot be reached. */
async function clusterDaemons(database: string): Promise<DaemonHeartbeat[] | null> {
  try {
    const store = await openStore(database, { migrate: false });
    try {
      return await store.listDaemons();
    } finally {
      await store.close();
    }
  } catch {
    return null;
  }
}
