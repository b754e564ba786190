// `taskmill list`: the configured daemon modules (Maint::Daemon::List).
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { configuredModules } from '../../daemon/module.js';
import { globalOptions } from '../open.js';
import { printJson, printLine, table } from '../output.js';

export function listCommand(program: Command): void {
  program
    .command('list')
    .description('the configured daemon modules')
    .option('--json', 'print JSON')
    .action((flags: { json?: boolean }, command: Command) => {
      const config = loadConfig({ file: globalOptions(command).config });
      const modules = configuredModules(config);
      if (flags.json) return printJson(modules);
      printLine(
        table(
          ['MODULE', 'SOURCE', 'ENABLED', 'OPTIONS'],
          modules.map((m) => [m.name, m.module ?? 'built in', m.enabled ? 'yes' : 'no', JSON.stringify(m.options)]),
        ),
      );
    });
}
