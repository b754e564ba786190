// Real processes: a deliverer killed (SIGKILL) in the middle of sending still gets its notification
// sent exactly once, by another process after its lease; and two processes watching the heartbeats
// send one "daemon not running" and one "running again" per outage between them.
import assert from 'node:assert/strict';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';
import { TestSmtp } from '../helpers/smtp.js';
import { killAll, spawnWorker, type WorkerProcess } from '../helpers/spawn.js';

const HANDLERS = { doomed: `export const options = { maxAttempts: 1 }; export default async () => { throw new Error('doomed task'); };` };

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`notifications across processes: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project | undefined;
    let smtp: TestSmtp | undefined;
    const procs: WorkerProcess[] = [];

    const setup = async (notify: ConfigInput['notify'] = {}) => {
      smtp = await new TestSmtp().start();
      p = await makeProject(engine, HANDLERS, {
        notify: { email: { to: ['ops@example.com'], from: 'taskmill@example.com', smtp: smtp.url }, pollInterval: 100, backoff: 200, ...notify },
      });
      return p;
    };
    const spawn = async (testProcess: { worker?: boolean; watchDaemons?: boolean }) => {
      const config = { ...p!.config, tasksDir: path.resolve(p!.tasksDir), testProcess } as ConfigInput;
      const proc = await spawnWorker(config, 'notifier-process.ts');
      procs.push(proc);
      return proc;
    };

    afterEach(async () => {
      await killAll(procs.splice(0));
      await p?.close();
      await smtp?.stop();
      p = smtp = undefined;
    });

    it('a deliverer killed between the failure and the accepted send: sent once, by another, after the lease', async () => {
      const { mill } = await setup({ lease: '3s' });
      smtp!.hold = true;
      const first = await spawn({ worker: true });
      const task = await mill.add('doomed');
      await mill.wait(task.id, { timeout: '20s' });
      // The first process has the mail on the wire, unanswered: kill it there.
      await eventually(() => (smtp!.held === 1 ? true : undefined), 20_000, 'the held message');
      first.child.kill('SIGKILL');
      await first.exited;
      smtp!.hold = false;
      assert.equal(smtp!.mails.length, 0);
      const [pending] = await mill.store.listNotifications(1);
      assert.equal(pending?.deliveries[0]?.state, 'pending');
      const killedAt = Date.now();
      await spawn({});
      const mail = await eventually(() => smtp!.mails[0], 20_000, 'the mail from the second process');
      assert.match(mail.subject, new RegExp(`doomed #${task.id} failed: doomed task`));
      assert.ok(Date.now() - killedAt >= 1_000, 'not before the lease could lapse');
      // Nothing more comes: it is marked sent.
      await eventually(async () => ((await mill.store.listNotifications(1))[0]?.deliveries[0]?.state === 'sent' ? true : undefined), 10_000, 'marked sent');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(smtp!.mails.length, 1);
      assert.equal((await mill.store.listNotifications(1))[0]?.deliveries[0]?.attempts, 2);
    });

    it('two watching processes: one "not running" alert per outage, and one "running again"', async () => {
      const { mill } = await setup({ daemonDownAfter: '1 minute' });
      const startedAt = new Date(Date.now() - 3_600_000);
      await mill.store.heartbeat({ id: 'ghost-host:1:x', host: 'ghost-host', pid: 1, startedAt, lastSeen: new Date(Date.now() - 10 * 60_000), modules: [] });
      await Promise.all([spawn({ watchDaemons: true }), spawn({ watchDaemons: true })]);
      const down = await eventually(() => smtp!.mails[0], 20_000, 'the down alert');
      assert.equal(down.subject, '[taskmill] daemon not running on ghost-host');
      assert.match(down.text, /No taskmill daemon on ghost-host has sent a heartbeat since/);
      // Proving that nothing more comes takes a wait: each process checks every second, so both
      // have checked again several times by the end of it.
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(smtp!.mails.length, 1, 'one alert for the outage between the two');
      // The daemon comes back.
      await mill.store.heartbeat({ id: 'ghost-host:2:y', host: 'ghost-host', pid: 2, startedAt: new Date(), lastSeen: new Date(), modules: [] });
      const up = await eventually(() => smtp!.mails[1], 20_000, 'the running-again notice');
      assert.equal(up.subject, '[taskmill] daemon running again on ghost-host');
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(smtp!.mails.length, 2, 'one notice for the return');
      const outputs = procs.map((pr) => pr.stdout()).join('\n');
      assert.equal(outputs.match(/no daemon heartbeat from a host/g)?.length, 1, 'one process noticed');
    });
  });
}
