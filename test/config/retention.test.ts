// Retention settings: the Maintenance module's completedAfter and failedAfter, their defaults, and the
// deprecated pruneAfter as the default of both.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { configRetention, cutoffs, retentionOf } from '../../src/config/retention.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';

const DAY = 86_400_000;
// No config file there: only the overrides count.
const cwd = mkdtempSync(path.join(tmpdir(), 'taskmill-retention-'));

describe('retention', () => {
  after(() => rmSync(cwd, { recursive: true, force: true }));
  it('defaults: COMPLETED and CANCELLED after 7 days, FAILED after 30', () => {
    assert.deepEqual(retentionOf({}), { COMPLETED: 7 * DAY, CANCELLED: 7 * DAY, FAILED: 30 * DAY });
    assert.deepEqual(configRetention(loadConfig({ overrides: {}, env: {}, cwd })), { COMPLETED: 7 * DAY, CANCELLED: 7 * DAY, FAILED: 30 * DAY });
  });

  it('completedAfter and failedAfter each take a duration or false; pruneAfter is the default of both', () => {
    assert.deepEqual(retentionOf({ completedAfter: '1 day', failedAfter: false }), { COMPLETED: DAY, CANCELLED: DAY, FAILED: null });
    assert.deepEqual(retentionOf({ pruneAfter: '3 days' }), { COMPLETED: 3 * DAY, CANCELLED: 3 * DAY, FAILED: 3 * DAY });
    assert.deepEqual(retentionOf({ pruneAfter: false, failedAfter: '60 days' }), { COMPLETED: null, CANCELLED: null, FAILED: 60 * DAY });
  });

  it('are read from the config file, checked when it loads', () => {
    const config = loadConfig({ overrides: { daemonModules: { Maintenance: { options: { completedAfter: '2 days' } } } }, env: {}, cwd });
    assert.deepEqual(configRetention(config), { COMPLETED: 2 * DAY, CANCELLED: 2 * DAY, FAILED: 30 * DAY });
    assert.throws(
      () => loadConfig({ overrides: { daemonModules: { Maintenance: { options: { failedAfter: 'later' } } } }, env: {}, cwd }),
      /daemonModules\.Maintenance\.options\.failedAfter": got "later"; expected a duration such as "30 days", or false/,
    );
  });

  it('cutoffs leave out a status kept for ever', () => {
    const now = new Date('2026-02-01T00:00:00Z');
    assert.deepEqual(cutoffs({ COMPLETED: DAY, CANCELLED: null, FAILED: 2 * DAY }, now), {
      COMPLETED: new Date('2026-01-31T00:00:00Z'),
      FAILED: new Date('2026-01-30T00:00:00Z'),
    });
  });
});
