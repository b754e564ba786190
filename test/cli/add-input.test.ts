// `taskmill add` as a real process: names as the ANDS task manager writes them, and a payload over
// the limit refused with exit 2 and one line saying how to raise it.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TaskJson } from '../../src/cli/output.js';
import { assertError, assertOk, runCli } from '../helpers/cli.js';
import { tempSqlite } from '../helpers/engines.js';

describe('cli add: input at the edge', () => {
  it('GENERATE_CACHE adds the task generate_cache; an oversized or NUL payload exits 2', async () => {
    const db = await tempSqlite();
    try {
      const env = { TASKMILL_DATABASE: db.url };
      const cli = (...args: string[]) => runCli(args, { cwd: db.dir, env });
      assertOk(await cli('init'));
      writeFileSync(path.join(db.dir, 'tasks', 'generate_cache.ts'), 'export default async () => null;');
      const configFile = path.join(db.dir, 'taskmill.config.json');
      const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
      writeFileSync(configFile, JSON.stringify({ ...config, limits: { payload: 100 } }));

      const id = assertOk(await cli('add', 'GENERATE_CACHE')).trim();
      const t = JSON.parse(assertOk(await cli('show', id, '--json'))) as TaskJson;
      assert.equal(t.name, 'generate_cache');

      const [big, nul, unknown] = await Promise.all([
        cli('add', 'generate_cache', '--payload', JSON.stringify({ s: 'x'.repeat(100) })),
        cli('add', 'Generate_Cache', '--payload', '{"s":"a\\u0000b"}'),
        cli('add', 'NO_SUCH_TASK'),
      ]);
      assertError(big, 2, /the payload of "generate_cache" is 108 bytes of JSON, over the limit of 100 bytes; .*raise "limits\.payload"/);
      assertError(nul, 2, /contains the NUL character/);
      assertError(unknown, 2, /unknown task "no_such_task": .*Known tasks: generate_cache, hello/);
    } finally {
      await db.drop();
    }
  });
});
