// The notify keys: checked once at the edge with messages that name the key and the fix; which
// channels a notification goes to and whom an e-mail reaches, by task name or pattern.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from '../../src/config/load.js';
import type { Notification } from '../../src/model/notification.js';
import { emailRecipients, lookup, notifyChannels, routeFor } from '../../src/notify/channels.js';
import { configuredModules } from '../../src/daemon/module.js';

const config = (notify: unknown, web: unknown = {}) => resolveConfig({ notify, web }, null, '/tmp');
const failure = (taskName: string): Notification => ({
  id: 1, kind: 'task_failed', taskId: 1, taskName, queue: 'default', error: 'e', errorStack: null, attempts: 1, maxAttempts: 1,
  host: 'h', payload: '{}', outputTail: [], detail: {}, createdAt: new Date(0),
});
const EMAIL = { to: ['ops@example.com'], from: 'Taskmill <taskmill@example.com>', smtp: 'smtps://u:p@mail.example.com' };

describe('notify config', () => {
  it('refuses bad values with the key and the fix', () => {
    assert.throws(() => config({ email: { ...EMAIL, smtp: 'http://mail' } }), /notify\.email\.smtp.*SMTP URL such as "smtp:\/\//s);
    assert.throws(() => config({ email: { ...EMAIL, to: [] } }), /notify\.email\.to.*at least one recipient/s);
    assert.throws(() => config({ email: { ...EMAIL, to: ['nobody'] } }), /notify\.email\.to\.0.*e-mail address/s);
    assert.throws(() => config({ webhook: { url: 'ftp://x', secret: 'x'.repeat(16) } }), /notify\.webhook\.url.*http/s);
    assert.throws(() => config({ webhook: { url: 'https://x', secret: 'short' } }), /notify\.webhook\.secret.*16 characters/s);
    assert.throws(() => config({ daemonDownAfter: '10s' }), /notify\.daemonDownAfter.*at least "30s"/s);
    assert.throws(() => config({ emial: {} }), /unknown key "notify\.emial"/);
    assert.throws(() => config({}, { publicUrl: 'tasks.example.com' }), /web\.publicUrl/);
  });

  it('documented defaults; the Notifier module is on only with a channel', () => {
    const c = config({});
    assert.deepEqual(
      [c.notify.interval, c.notify.maxPerInterval, c.notify.daemonDownAfter, c.notify.backoff, c.notify.backoffMax, c.notify.lease, c.notify.pollInterval],
      [300_000, 5, 180_000, 10_000, 600_000, 120_000, 2_000],
    );
    assert.deepEqual(notifyChannels(c), []);
    assert.equal(configuredModules(c).find((m) => m.name === 'Notifier')?.enabled, false);
    const on = config({ email: EMAIL, webhook: { url: 'https://hooks.example.com/x', secret: 'x'.repeat(16) } });
    assert.deepEqual(notifyChannels(on), ['email', 'webhook']);
    assert.equal(configuredModules(on).find((m) => m.name === 'Notifier')?.enabled, true);
    const off = resolveConfig({ notify: { email: EMAIL }, daemonModules: { Notifier: { enabled: false } } }, null, '/tmp');
    assert.equal(configuredModules(off).find((m) => m.name === 'Notifier')?.enabled, false);
  });

  it('per task: the exact name wins, then the longest pattern; false sends none', () => {
    const tasks = { 'billing/*': ['billing@example.com'], 'billing/refund-*': false as const, 'billing/refund-big': ['cfo@example.com'], '*': ['all@example.com'] };
    assert.equal(lookup(tasks, 'billing/charge')?.toString(), 'billing@example.com');
    assert.equal(lookup(tasks, 'billing/refund-small'), false);
    assert.deepEqual(lookup(tasks, 'billing/refund-big'), ['cfo@example.com']);
    assert.deepEqual(lookup(tasks, 'other'), ['all@example.com']);
    assert.deepEqual(emailRecipients({ ...EMAIL, tasks: { 'a.b': false } }, 'axb'), EMAIL.to, 'a dot is a dot, not any character');
    const c = config({ email: { ...EMAIL, tasks: { 'noisy-*': false } }, webhook: { url: 'https://h.example.com', secret: 'x'.repeat(16), tasks: { 'quiet': false } } });
    const route = routeFor(c.notify);
    assert.deepEqual(route(failure('noisy-job')), ['webhook']);
    assert.deepEqual(route(failure('quiet')), ['email']);
    assert.deepEqual(route({ ...failure('noisy-job'), kind: 'daemon_down', taskName: null }), ['email', 'webhook'], 'alerts go everywhere');
  });
});
