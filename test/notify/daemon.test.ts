// The Notifier as the daemon runs it, and `taskmill watchdog` noticing a host whose daemon died: the
// built CLI (dist/) in real processes, mail through a real SMTP server on loopback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DaemonProject } from '../helpers/daemon.js';
import { ENGINES, type TempDatabase } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { TestSmtp } from '../helpers/smtp.js';

const sqlite = ENGINES.find((e) => e.name === 'sqlite')!;
const DOOMED = `export const options = { maxAttempts: 1 }; export default async () => { throw new Error('doomed in the daemon'); };\n`;

describe('notifications from the daemon and the watchdog', () => {
  let db: TempDatabase;
  let smtp: TestSmtp;
  let p: DaemonProject;

  before(async () => {
    db = await sqlite.create();
    smtp = await new TestSmtp().start();
    p = new DaemonProject({
      dir: db.dir,
      database: db.url,
      handlers: { doomed: DOOMED },
      config: {
        web: { enabled: false, publicUrl: 'http://127.0.0.1:8275' },
        notify: { email: { to: ['ops@example.com'], from: 'taskmill@example.com', smtp: smtp.url }, pollInterval: '100ms', daemonDownAfter: '1 minute' },
      },
    });
  });
  after(async () => {
    await p.cleanup();
    await p.closeMill();
    await smtp.stop();
    await db.drop();
  });

  it('the watchdog alerts a dead host once and starts the daemon, whose Notifier mails a failed task', async () => {
    const mill = await p.mill();
    await mill.store.heartbeat({
      id: 'ghost-host:1:x', host: 'ghost-host', pid: 1, startedAt: new Date(Date.now() - 3_600_000),
      lastSeen: new Date(Date.now() - 10 * 60_000), modules: [],
    });
    const first = await p.cli(['watchdog'], 60_000);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /no daemon heartbeat from ghost-host/);
    assert.match(first.stdout, /daemon started/);
    const alert = await eventually(() => smtp.mails[0], 30_000, 'the down alert');
    assert.equal(alert.subject, '[taskmill] daemon not running on ghost-host');
    await p.waitRunning(['TaskWorker', 'Notifier']);

    const id = await p.add('doomed');
    const mail = await eventually(() => smtp.mails.find((m) => m.subject.includes(`#${id}`)), 30_000, 'the failure mail');
    assert.match(mail.subject, new RegExp(`^\\[taskmill\\] task doomed #${id} failed: doomed in the daemon$`));
    assert.match(mail.text, new RegExp(`Link: +http://127\\.0\\.0\\.1:8275/tasks/${id}`));

    const again = await p.cli(['watchdog'], 60_000);
    assert.match(again.stdout, /the daemon is running/);
    assert.doesNotMatch(again.stdout, /no daemon heartbeat/);
    assert.equal(smtp.mails.filter((m) => m.subject.includes('not running')).length, 1, 'one alert per outage');
  });
});
