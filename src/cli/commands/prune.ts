// `taskmill prune`: deletes finished tasks older than their retention (or --older-than), and says how
// many it removed, per status; --dry-run counts them and deletes nothing.
import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../../config/duration.js';
import { InvalidInputError } from '../../model/errors.js';
import { PRUNABLE_STATUSES, type PrunableStatus } from '../../store/store.js';
import { list } from '../args.js';
import { withMill } from '../open.js';
import { printLine } from '../output.js';

interface PruneFlags {
  dryRun?: boolean;
  olderThan?: string;
  status?: string[];
}

export function pruneCommand(program: Command): void {
  program
    .command('prune')
    .description('delete finished tasks older than their retention (COMPLETED and CANCELLED 7 days, FAILED 30 days by default)')
    .option('--dry-run', 'count what would be removed, remove nothing')
    .option('--older-than <duration>', 'one age for every chosen status, e.g. "3 days" (default: the configured retention)')
    .option('--status <status...>', 'only these: COMPLETED, CANCELLED or FAILED (comma-separated or repeated; default all three)')
    .action(async (flags: PruneFlags, command: Command) => {
      // Checked before the database is opened, so bad input never waits on a connection.
      const olderThanMs = flags.olderThan === undefined ? undefined : parseDuration(flags.olderThan, '--older-than');
      const statuses = list(flags.status).map((s) => s.toUpperCase());
      for (const s of statuses) {
        if (!(PRUNABLE_STATUSES as readonly string[]).includes(s)) {
          throw new InvalidInputError(`invalid --status "${s}": prune removes finished tasks only, COMPLETED, CANCELLED or FAILED.`);
        }
      }
      await withMill(command, async (mill) => {
        const report = await mill.prune({
          olderThan: olderThanMs,
          statuses: statuses.length > 0 ? (statuses as PrunableStatus[]) : undefined,
          dryRun: flags.dryRun,
        });
        const chosen = statuses.length > 0 ? (statuses as PrunableStatus[]) : [...PRUNABLE_STATUSES];
        const total = chosen.reduce((n, s) => n + report.removed[s], 0);
        const now = Date.now();
        const parts = chosen.map((s) => {
          const before = report.before[s];
          return before ? `${s} ${report.removed[s]} (older than ${formatDuration(now - before.getTime())})` : `${s} kept (retention off)`;
        });
        const verb = report.dryRun ? 'Would remove' : 'Removed';
        printLine(`${verb} ${total} finished task${total === 1 ? '' : 's'}: ${parts.join(', ')}.`);
      });
    });
}
