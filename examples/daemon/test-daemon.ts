// A daemon module that prints the time every 2 seconds, discards itself every hour (the main daemon
// then starts a fresh process), and has a summary. Register it in taskmill.config.json:
//   "daemonModules": { "TestDaemon": { "module": "examples/daemon/test-daemon.ts", "options": { "greeting": "Current time" } } }
import type { DaemonModule, ModuleContext, ModuleSummary } from 'taskmill';

// Sleep 2 s after each loop; discard the process after an hour.
export const settings = { sleep: '2s', discardAfter: '1 hour' };

export default class TestDaemon implements DaemonModule {
  private readonly printed: string[] = [];

  constructor(private readonly ctx: ModuleContext) {}

  // No preRun: the default one waits until the database answers (checking every 10 s).

  run(): boolean {
    const line = `${String(this.ctx.options.greeting ?? 'Current time')} ${new Date().toString()}`;
    console.log(line); // the module's output: var/log/daemon/daemon.out, or the console with start --foreground --debug
    this.ctx.log.debug('printed the time'); // TestDaemon.log, at log.level "debug" or with --debug
    this.printed.push(new Date().toISOString());
    if (this.printed.length > 5) this.printed.shift();
    return true; // false would discard this process now
  }

  postRun(): boolean {
    return true;
  }

  summary(): ModuleSummary {
    return {
      header: 'Test Daemon Summary:',
      columns: [
        { name: 'n', displayName: 'Loop', size: 6 },
        { name: 'at', displayName: 'Printed at', size: 26 },
      ],
      rows: this.printed.map((at, i) => ({ n: i + 1, at })),
      noDataMessage: 'Nothing printed yet.',
    };
  }
}
