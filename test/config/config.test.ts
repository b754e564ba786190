// Config loading and durations: every error names the key, the value and what is allowed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { loadConfig } from '../../src/config/load.js';

const dir = mkdtempSync(path.join(tmpdir(), 'taskmill-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

describe('durations', () => {
  it('parses the forms people write', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('5 minutes'), 300_000);
    assert.equal(parseDuration('1 hour'), 3_600_000);
    assert.equal(parseDuration('2 days'), 172_800_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1h 30m'), 5_400_000);
    assert.equal(parseDuration('1500'), 1500);
    assert.equal(parseDuration(42), 42);
  });
  it('refuses anything else, naming the value and the accepted forms', () => {
    for (const bad of ['', 'soon', '5 parsecs', '-1s', '1h junk']) {
      assert.throws(() => parseDuration(bad, 'delay'), (e: Error) => e.message.includes(`invalid delay "${bad}"`) && /"90s"/.test(e.message));
    }
    assert.throws(() => parseDuration(-5), /invalid duration/);
  });
  it('formats compactly', () => {
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(90_000), '1m 30s');
    assert.equal(formatDuration(90_061_000), '1d 1h');
  });
});

describe('config loading', () => {
  it('uses documented defaults without a file, paths relative to the working directory', () => {
    const c = loadConfig({ cwd: dir, env: {} });
    assert.equal(c.database, `sqlite:${path.join(dir, 'var', 'taskmill.db')}`);
    assert.equal(c.tasksDir, path.join(dir, 'tasks'));
    assert.equal(c.varDir, path.join(dir, 'var'));
    assert.equal(c.worker.concurrency, 10);
    assert.equal(c.worker.lease, 30_000);
    assert.equal(c.defaults.maxAttempts, 3);
    assert.equal(c.file, null);
  });

  it('reads taskmill.config.json from the working directory, TASKMILL_CONFIG or an explicit file', () => {
    const sub = mkdtempSync(path.join(dir, 'proj-'));
    writeFileSync(path.join(sub, 'taskmill.config.json'), JSON.stringify({ tasksDir: 'jobs', worker: { concurrency: 3, lease: '1 minute' } }));
    const c = loadConfig({ cwd: sub, env: {} });
    assert.equal(c.tasksDir, path.join(sub, 'jobs'));
    assert.equal(c.worker.concurrency, 3);
    assert.equal(c.worker.lease, 60_000);
    const other = write('other.json', JSON.stringify({ worker: { concurrency: 4 } }));
    assert.equal(loadConfig({ cwd: sub, env: { TASKMILL_CONFIG: other } }).worker.concurrency, 4);
    assert.equal(loadConfig({ cwd: sub, file: other, env: {} }).worker.concurrency, 4);
  });

  it('lets TASKMILL_DATABASE override the file', () => {
    const file = write('db.json', JSON.stringify({ database: 'sqlite:a.db' }));
    const c = loadConfig({ file, env: { TASKMILL_DATABASE: 'postgres://u@h:5432/d' } });
    assert.equal(c.database, 'postgres://u@h:5432/d');
  });

  it('names the key, the bad value and what is allowed', () => {
    const file = write('bad.json', JSON.stringify({ worker: { concurrency: 'lots', lease: 'forever' }, databse: 'x' }));
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'CONFIG_INVALID');
        assert.match(e.message, /key "worker\.concurrency": got "lots"/);
        assert.match(e.message, /key "worker\.lease": got "forever"; expected a duration/);
        assert.match(e.message, /unknown key "databse"/);
        return true;
      },
    );
  });

  it('reports broken JSON and a missing explicit file clearly', () => {
    const file = write('broken.json', '{ "database": ');
    assert.throws(() => loadConfig({ file, env: {} }), /is not valid JSON/);
    assert.throws(() => loadConfig({ file: path.join(dir, 'missing.json'), env: {} }), /does not exist/);
    const arr = write('array.json', '[]');
    assert.throws(() => loadConfig({ file: arr, env: {} }), /must hold a JSON object/);
  });

  it('refuses a database URL of an unknown kind', () => {
    const file = write('mysql.json', JSON.stringify({ database: 'mysql://x' }));
    assert.throws(() => loadConfig({ file, env: {} }), /key "database": got "mysql:\/\/x"; expected "sqlite:PATH"/);
  });
});
