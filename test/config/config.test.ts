// Config loading and durations: every error names the key, the value and what is allowed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { MAX_TIMER_MS, formatDuration, parseDuration } from '../../src/config/duration.js';
import { loadConfig } from '../../src/config/load.js';
import { parseSize } from '../../src/config/size.js';

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

/** The message of loading `config` (as overrides, no file), which must fail. */
function problems(config: object): string {
  try {
    loadConfig({ cwd: dir, env: {}, overrides: config });
  } catch (err) {
    assert.equal((err as Error & { code?: string }).code, 'CONFIG_INVALID');
    return (err as Error).message;
  }
  assert.fail(`accepted ${JSON.stringify(config)}`);
}

describe('duration bounds', () => {
  it('refuses zero or negative where it makes no sense, naming the key', () => {
    const m = problems({ worker: { lease: 0, pollInterval: '0s' }, defaults: { timeout: '-5s' } });
    assert.match(m, /key "worker\.lease": got 0; must be longer than 0/);
    assert.match(m, /key "worker\.pollInterval": got "0s"; must be longer than 0/);
    assert.match(m, /key "defaults\.timeout": got "-5s"; cannot be negative/);
    assert.match(problems({ worker: { lease: -1 } }), /key "worker\.lease": got -1; cannot be negative/);
  });

  it('accepts zero where it means "at once": stop timeouts and backoff', () => {
    const c = loadConfig({ cwd: dir, env: {}, overrides: { worker: { stopTimeout: 0, forceStopTimeout: 0 }, defaults: { backoff: 0 } } });
    assert.equal(c.worker.stopTimeout, 0);
    assert.equal(c.worker.forceStopTimeout, 0);
    assert.equal(c.defaults.backoff, 0);
  });

  it('refuses timer durations beyond a JS timer, giving the maximum; a long timeout passes through unchanged', () => {
    assert.equal(MAX_TIMER_MS, 2 ** 31 - 1);
    for (const key of ['pollInterval', 'lease', 'stopTimeout', 'forceStopTimeout']) {
      const m = problems({ worker: { [key]: '25 days' } });
      assert.match(m, new RegExp(`key "worker\\.${key}": got "25 days"; must be at most ${MAX_TIMER_MS} ms`));
    }
    const ok = loadConfig({ cwd: dir, env: {}, overrides: { worker: { lease: MAX_TIMER_MS }, defaults: { timeout: '60 days' } } });
    assert.equal(ok.worker.lease, MAX_TIMER_MS);
    assert.equal(ok.defaults.timeout, 60 * 86_400_000);
  });

  it('refuses a duration too long to be meant instead of losing precision', () => {
    assert.throws(() => parseDuration('9'.repeat(400)), /too long/);
    assert.throws(() => parseDuration(`${'9'.repeat(20)} days`), /too long/);
    assert.throws(() => parseDuration(Number.MAX_VALUE), /invalid duration/);
  });
});

describe('built-in module options', () => {
  it('are validated when the file loads, naming the key path', () => {
    const m = problems({
      daemonModules: {
        TaskWorker: { options: { maxTasks: 0, maxRssMb: 'big', concurrency: 5000 } },
        Maintenance: { options: { pruneAfter: 'soon' } },
      },
    });
    assert.match(m, /key "daemonModules\.TaskWorker\.options\.maxTasks": got 0; expected a whole number ≥ 1/);
    assert.match(m, /key "daemonModules\.TaskWorker\.options\.maxRssMb": got "big"; expected a whole number ≥ 0/);
    assert.match(m, /key "daemonModules\.TaskWorker\.options\.concurrency": got 5000; expected a whole number from 1 to 1000/);
    assert.match(m, /key "daemonModules\.Maintenance\.options\.pruneAfter": got "soon"; expected a duration such as "7 days", or false/);
    assert.match(problems({ daemonModules: { Maintenance: { options: { pruneAfter: 0 } } } }), /pruneAfter": got 0;.*or false to keep/);
  });

  it("refuse unknown keys; a custom module's options stay free-form", () => {
    const m = problems({ daemonModules: { TaskWorker: { options: { maxTask: 10 } }, Scheduler: { options: { tick: 1 } } } });
    assert.match(m, /unknown key "daemonModules\.TaskWorker\.options\.maxTask"/);
    assert.match(m, /unknown key "daemonModules\.Scheduler\.options\.tick"/);
    const c = loadConfig({
      cwd: dir,
      env: {},
      overrides: {
        daemonModules: {
          Mine: { module: 'mine.ts', options: { anything: [1, 'two'] } },
          TaskWorker: { options: { maxTasks: 50, maxRssMb: 0, queues: ['mail'] } },
          Maintenance: { options: { pruneAfter: false } },
        },
      },
    });
    assert.deepEqual(c.daemonModules.Mine?.options, { anything: [1, 'two'] });
    // Kept as written (listings show them so); the module reads them typed.
    assert.deepEqual(c.daemonModules.TaskWorker?.options, { maxTasks: 50, maxRssMb: 0, queues: ['mail'] });
    assert.deepEqual(c.daemonModules.Maintenance?.options, { pruneAfter: false });
  });
});

describe('size limits', () => {
  it('default to 1 MB each and resolve to bytes', () => {
    const c = loadConfig({ cwd: dir, env: {} });
    assert.deepEqual(c.limits, { payloadBytes: 1_048_576, resultBytes: 1_048_576, outputBytes: 1_048_576 });
    const set = loadConfig({ cwd: dir, env: {}, overrides: { limits: { payload: '2 MB', result: 4096, output: '512 KB' } } });
    assert.deepEqual(set.limits, { payloadBytes: 2_097_152, resultBytes: 4096, outputBytes: 524_288 });
  });

  it('refuse what is not a size, naming the key', () => {
    const m = problems({ limits: { payload: 'lots', result: 0, output: '1 TB', extra: 1 } });
    assert.match(m, /key "limits\.payload": got "lots"; expected a number of bytes/);
    assert.match(m, /key "limits\.result": got 0; expected a number of bytes/);
    assert.match(m, /key "limits\.output": got "1 TB"/);
    assert.match(m, /unknown key "limits\.extra"/);
    assert.match(problems({ limits: { payload: '1 GB' } }), /key "limits\.payload": got "1 GB"; must be at most 209,715,200 bytes/);
    assert.equal(parseSize('1.5 KB'), 1536);
    assert.equal(parseSize('10'), 10);
  });
});
