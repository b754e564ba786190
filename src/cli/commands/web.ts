// `taskmill web [--host H] [--port P]`: serves the admin page and the API alone, in the foreground,
// until SIGINT or SIGTERM (the daemon's Web module does the same under the supervisor).
import type { Command } from 'commander';
import type { Logger } from '../../model/logger.js';
import { serveWeb } from '../../web/serve.js';
import { notifyChannels } from '../../notify/channels.js';
import { Notifier } from '../../notify/notifier.js';
import { wholeNumber } from '../args.js';
import { withMill } from '../open.js';
import { printError, printLine } from '../output.js';

export function webCommand(program: Command): void {
  program
    .command('web')
    .description('serve the admin page and the HTTP API in the foreground (the daemon\'s Web module does it too)')
    .option('--host <address>', 'address to bind (default: web.host, 127.0.0.1)')
    .option('--port <port>', 'port to listen on (default: web.port, 8275; 0 picks a free one)')
    .action(async (flags: { host?: string; port?: string }, command: Command) => {
      const port = flags.port === undefined ? undefined : wholeNumber(flags.port, '--port', 0, 65_535);
      await withMill(command, async (mill) => {
        const logger = consoleLogger();
        const { server, url, loginLink } = await serveWeb({ mill, logger, host: flags.host, port });
        printLine(`taskmill web serving on ${url}`);
        // Notifications: a page served apart from any daemon also watches the daemons' heartbeats
        // (one alert per outage in the cluster) and delivers what is due, when a channel is configured.
        const notifier = notifyChannels(mill.config).length > 0
          ? new Notifier({ store: mill.store, config: mill.config, log: logger, role: 'web', watchDaemons: true })
          : null;
        notifier?.start();
        if (loginLink) printLine(`No user or token exists yet: log in once with ${loginLink} (valid for 24 hours)`);
        await new Promise<void>((resolve) => {
          const onSignal = () => {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
            resolve();
          };
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
        });
        await notifier?.stop();
        await server.stop();
      });
    });
}

/** Warnings and errors on stderr; the foreground server has no log file. */
function consoleLogger(): Logger {
  const line = (level: string) => (message: string, context?: Record<string, unknown>) =>
    printError(`${level}: ${message}${context ? ` ${JSON.stringify(context)}` : ''}`);
  return { debug: () => undefined, info: () => undefined, warn: line('warning'), error: line('error') };
}
