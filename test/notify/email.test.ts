// Failure e-mail end to end: a real worker fails real tasks, the Notifier sends through nodemailer to a
// real SMTP server on loopback. Storms become digests; an SMTP outage loses and doubles nothing.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { silentLogger } from '../../src/model/logger.js';
import { Notifier } from '../../src/notify/notifier.js';
import type { Worker } from '../../src/worker/worker.js';
import { ENGINES } from '../helpers/engines.js';
import { eventually } from '../helpers/fixtures.js';
import { makeProject, type Project } from '../helpers/project.js';
import { TestSmtp } from '../helpers/smtp.js';

const HANDLERS = {
  'send-invoice': `
    export const options = { maxAttempts: 2, backoff: 10 };
    export default async (payload, ctx) => {
      ctx.log('charging', payload.customer);
      console.log('step', ctx.task.attempt);
      throw new Error('payment gateway said <no> & "never"');
    };`,
  quiet: `export const options = { maxAttempts: 1 }; export default async () => { throw new Error('quiet failure'); };`,
  'billing/refund': `export const options = { maxAttempts: 1 }; export default async () => { throw new Error('refund failed'); };`,
  storm: `export const options = { maxAttempts: 1 }; export default async (p) => { throw new Error('storm failure ' + p.n); };`,
};

/** Task ids a mail names as "#<id> <name>" or "<name> #<id>". */
function idsIn(text: string): number[] {
  return [...text.matchAll(/#(\d+) storm:/g)].map((m) => Number(m[1]));
}

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`failure e-mail: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    let p: Project | undefined;
    let smtp: TestSmtp | undefined;
    let worker: Worker | undefined;
    let notifier: Notifier | undefined;

    type NotifyInput = Omit<NonNullable<ConfigInput['notify']>, 'email'> & { email?: Partial<NonNullable<NonNullable<ConfigInput['notify']>['email']>> };
    const setup = async (notify: NotifyInput = {}, extra: ConfigInput = {}) => {
      smtp = await new TestSmtp().start();
      p = await makeProject(engine, HANDLERS, {
        ...extra,
        web: { publicUrl: 'https://tasks.example.com/' },
        notify: {
          pollInterval: 50,
          backoff: 100,
          backoffMax: 400,
          ...notify,
          email: { to: ['ops@example.com'], from: 'taskmill@example.com', smtp: smtp.url, ...notify?.email },
        } as ConfigInput['notify'],
      });
      worker = p.mill.worker({ concurrency: 10 });
      worker.start();
      notifier = new Notifier({ store: p.mill.store, config: p.mill.config, log: silentLogger, role: 'test' });
      notifier.start();
      return p;
    };

    afterEach(async () => {
      await notifier?.stop();
      await worker?.stop({ timeoutMs: 100 });
      await p?.close();
      await smtp?.stop();
      notifier = worker = p = smtp = undefined;
    });

    it('mails a task that failed for good: subject, error, stack, attempts, host, payload, output and link', async () => {
      const { mill } = await setup();
      const task = await mill.add('send-invoice', { customer: 'ACME <b>' });
      await mill.wait(task.id, { timeout: '20s' });
      const mail = await eventually(() => smtp!.mails[0], 20_000, 'the mail');
      assert.deepEqual(mail.to, ['ops@example.com']);
      assert.equal(mail.from, 'taskmill@example.com');
      assert.equal(mail.subject, `[taskmill] task send-invoice #${task.id} failed: payment gateway said <no> & "never"`);
      assert.match(mail.text, /Error: +payment gateway said <no> & "never"/);
      assert.match(mail.text, /Attempts: +2 of 2/);
      assert.match(mail.text, /Stack:\n {2}Error: payment gateway said[^\n]*\n {6}at /, 'the stack');
      assert.match(mail.text, new RegExp(`Link: +https://tasks\\.example\\.com/tasks/${task.id}\\n`));
      assert.match(mail.text, /Host: +\S+/);
      assert.match(mail.text, /Payload \(shortened\):\n {2}\{"customer": ?"ACME <b>"\}/);
      assert.match(mail.text, /charging ACME <b>/);
      assert.match(mail.text, /--- attempt 2 ---/, 'the last output lines');
      // The HTML part escapes what the task wrote.
      assert.match(mail.html, /payment gateway said &lt;no&gt; &amp; &quot;never&quot;/);
      assert.doesNotMatch(mail.html, /<no>|ACME <b>/);
      assert.match(mail.html, new RegExp(`<a href="https://tasks.example.com/tasks/${task.id}">`));
      // Exactly one, even after more passes.
      await notifier!.pass();
      assert.equal(smtp!.mails.length, 1);
      const [record] = await mill.store.listNotifications(1);
      assert.equal(record?.deliveries[0]?.state, 'sent');
    });

    it('sends per task name or pattern to its own recipients, or to none', async () => {
      const { mill } = await setup({
        email: { tasks: { quiet: false, 'billing/*': ['billing@example.com', 'Boss <boss@example.com>'] } },
      });
      const quiet = await mill.add('quiet');
      const refund = await mill.add('billing/refund');
      await mill.wait(quiet.id, { timeout: '20s' });
      await mill.wait(refund.id, { timeout: '20s' });
      const mail = await eventually(() => smtp!.mails[0], 20_000, 'the mail');
      await notifier!.pass();
      assert.equal(smtp!.mails.length, 1, 'none for "quiet"');
      assert.deepEqual(mail.to.sort(), ['billing@example.com', 'boss@example.com']);
      assert.match(mail.subject, /billing\/refund/);
    });

    it('50 failures in a few seconds: a bounded number of mails that list all 50, none twice', async () => {
      const { mill } = await setup({ interval: 1_500, maxPerInterval: 3 });
      const started = Date.now();
      const tasks = await mill.addMany(Array.from({ length: 50 }, (_, n) => ({ name: 'storm', payload: { n } })));
      for (const t of tasks) await mill.wait(t.id, { timeout: '30s' });
      const failedWithin = Date.now() - started;
      const want = tasks.map((t) => t.id).sort((a, b) => a - b);
      const seen = () => smtp!.mails.flatMap((m) => (m.subject.includes('(digest)') ? idsIn(m.text) : [Number(/#(\d+) failed/.exec(m.subject)?.[1])]));
      await eventually(() => (seen().length >= 50 ? true : undefined), 30_000, 'all 50 tasks in mails');
      await notifier!.pass();
      const ids = seen().sort((a, b) => a - b);
      assert.deepEqual(ids, want, 'every task once');
      // Per window of 1.5 s: at most 3 single mails and one digest.
      const windows = Math.ceil((Date.now() - started) / 1_500) + 1;
      assert.ok(smtp!.mails.length <= windows * 4, `${smtp!.mails.length} mails in ${windows} windows`);
      assert.ok(smtp!.mails.length < 25, `${smtp!.mails.length} mails for 50 failures (failed within ${failedWithin} ms)`);
      console.log(`# storm: 50 failures within ${failedWithin} ms gave ${smtp!.mails.length} mails`);
      const digest = smtp!.mails.find((m) => m.subject.includes('(digest)'));
      assert.ok(digest, 'a digest');
      assert.match(digest.text, /#\d+ storm: storm failure \d+ {2}<https:\/\/tasks\.example\.com\/tasks\/\d+>/);
    });

    it('SMTP down for a while, then up: every notification arrives, none twice', async () => {
      const { mill } = await setup();
      const port = smtp!.port;
      await smtp!.stop();
      const tasks = await mill.addMany(Array.from({ length: 5 }, () => ({ name: 'quiet' })));
      for (const t of tasks) await mill.wait(t.id, { timeout: '20s' });
      // Sends fail (connection refused) and are deferred with back-off; the tasks stay as they are.
      await eventually(async () => {
        const records = await mill.store.listNotifications(10);
        return records.length === 5 && records.every((r) => (r.deliveries[0]?.lastError ?? '') !== '') ? true : undefined;
      }, 20_000, 'failed sends recorded');
      for (const t of tasks) assert.equal((await mill.get(t.id))?.status, 'FAILED');
      await new Promise((r) => setTimeout(r, 1_000)); // several retries while down
      await smtp!.start(port);
      await eventually(() => (smtp!.mails.length >= 5 ? true : undefined), 20_000, 'all five mails');
      await notifier!.pass();
      const got = smtp!.mails.map((m) => Number(/#(\d+) failed/.exec(m.subject)?.[1])).sort((a, b) => a - b);
      assert.deepEqual(got, tasks.map((t) => t.id));
      const records = await mill.store.listNotifications(10);
      assert.ok(records.every((r) => r.deliveries[0]?.state === 'sent'));
      assert.ok(records.some((r) => (r.deliveries[0]?.attempts ?? 0) > 1), 'retried');
    });
  });
}
