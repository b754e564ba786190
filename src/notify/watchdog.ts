// What `taskmill watchdog` does for notifications: checks daemon heartbeats (so a host whose daemon
// died is alerted even when no other daemon runs), then, once the daemon is started, sends what is
// due. A problem here is printed and never keeps the watchdog from starting the daemon.
import type { Config } from '../config/schema.js';
import type { Logger } from '../model/logger.js';
import { openStore } from '../store/open.js';
import { notifyChannels } from './channels.js';
import { Notifier } from './notifier.js';

export interface DaemonWatch {
  /** Sends due notifications (the alert just written among them), then closes. */
  deliver(): Promise<void>;
}

/** Null when no channel is configured (nothing to alert with) or the database cannot be reached. */
export async function watchDaemons(config: Config, print: (line: string) => void): Promise<DaemonWatch | null> {
  if (notifyChannels(config).length === 0) return null;
  const log: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message, context) => print(`notify: ${message}${context ? ` ${JSON.stringify(context)}` : ''}`),
    error: (message, context) => print(`notify: ${message}${context ? ` ${JSON.stringify(context)}` : ''}`),
  };
  let store;
  try {
    store = await openStore(config.database);
  } catch (err) {
    print(`notify: cannot check daemon heartbeats: ${(err as Error).message}`);
    return null;
  }
  const notifier = new Notifier({ store, config, log, role: 'watchdog' });
  try {
    const { down, up } = await notifier.checkDaemons();
    for (const host of down) print(`no daemon heartbeat from ${host} for notify.daemonDownAfter: alerting`);
    for (const host of up) print(`the daemon on ${host} runs again: alerting`);
  } catch (err) {
    print(`notify: cannot check daemon heartbeats: ${(err as Error).message}`);
  }
  return {
    async deliver() {
      try {
        await notifier.pass();
      } catch (err) {
        print(`notify: sending notifications failed (the daemon sends them later): ${(err as Error).message}`);
      } finally {
        await notifier.stop();
        await store.close();
      }
    },
  };
}
