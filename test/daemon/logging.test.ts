// Midnight rotation of daemon.out and of a module log, with the clock pinned just before midnight
// (no process needed: the files are written by this one).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openModuleLog, openOutFile } from '../../src/daemon/logging.js';
import { waitFor } from '../helpers/daemon.js';

const day = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

/** A clock that reaches the next local midnight `inMs` from now, and runs on from there. */
function clockBeforeMidnight(inMs: number): () => Date {
  const t = new Date();
  const midnight = new Date(t.getFullYear(), t.getMonth(), t.getDate() + 1).getTime();
  const offset = midnight - inMs - Date.now();
  return () => new Date(Date.now() + offset);
}

describe('daemon logs at midnight', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'taskmill-logs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('daemon.out becomes daemon.YYYY-MM-DD.out and writing goes on in a fresh daemon.out', async () => {
    const now = clockBeforeMidnight(300);
    const ended = day(now());
    writeFileSync(path.join(dir, 'daemon.2000-01-01.out'), 'old\n');
    const errors: string[] = [];
    const out = openOutFile({ dir, retentionDays: 7, onError: (m) => errors.push(m), now });
    try {
      assert.ok(!existsSync(path.join(dir, 'daemon.2000-01-01.out')), 'past the retention: deleted at open');
      out.write(Buffer.from('before midnight\n'));
      const rotated = path.join(dir, `daemon.${ended}.out`);
      await waitFor(() => existsSync(rotated), 'daemon.out to be rotated', 10_000, 20);
      out.write(Buffer.from('after midnight\n'));
      assert.equal(readFileSync(rotated, 'utf8'), 'before midnight\n');
      assert.equal(readFileSync(path.join(dir, 'daemon.out'), 'utf8'), 'after midnight\n');
      assert.deepEqual(errors, []);
    } finally {
      out.close();
    }
    out.write(Buffer.from('after close\n'));
    assert.equal(readFileSync(path.join(dir, 'daemon.out'), 'utf8'), 'after midnight\n', 'a write after close is dropped');
  });

  it('a module log becomes NAME.YYYY-MM-DD.log', async () => {
    const now = clockBeforeMidnight(300);
    const ended = day(now());
    const log = openModuleLog({ dir, name: 'Main', level: 'info', retentionDays: 7, now });
    try {
      log.logger.info('before midnight');
      const rotated = path.join(dir, `Main.${ended}.log`);
      await waitFor(() => existsSync(rotated), 'Main.log to be rotated', 10_000, 20);
      log.logger.info('after midnight');
      assert.match(readFileSync(rotated, 'utf8'), /before midnight/);
      assert.doesNotMatch(readFileSync(rotated, 'utf8'), /after midnight/);
      assert.match(readFileSync(path.join(dir, 'Main.log'), 'utf8'), /after midnight/);
    } finally {
      log.close();
    }
  });
});
