// Bad input at add, refused alike on both engines with a message that says what to do: durations,
// payload size, and strings PostgreSQL's jsonb cannot hold.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_TIMER_MS } from '../../src/config/duration.js';
import { ENGINES } from '../helpers/engines.js';
import { makeProject } from '../helpers/project.js';

const invalid = (pattern: RegExp) => (e: Error & { code?: string }) => {
  assert.equal(e.code, 'INVALID_INPUT', e.message);
  assert.match(e.message, pattern);
  return true;
};

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`add refuses bad input: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('durations: a negative delay and a zero timeout are refused; delay 0 and a timeout past a timer pass through', async () => {
      const p = await makeProject(engine, { echo: 'export default async (x) => x;' });
      try {
        await assert.rejects(p.mill.add('echo', {}, { delay: -1000 }), invalid(/invalid delay "-1000": it cannot be negative/));
        await assert.rejects(p.mill.add('echo', {}, { delay: '-5s' }), invalid(/invalid delay "-5s": it cannot be negative/));
        await assert.rejects(p.mill.add('echo', {}, { timeout: 0 }), invalid(/invalid timeout 0: it must be longer than 0/));
        await assert.rejects(p.mill.add('echo', {}, { timeout: '0s' }), invalid(/invalid timeout "0s": it must be longer than 0/));
        const now = await p.mill.add('echo', {}, { delay: 0 });
        assert.ok(Math.abs(now.runAt.getTime() - Date.now()) < 5_000);
        const long = await p.mill.add('echo', {}, { timeout: '60 days' });
        assert.equal(long.timeoutMs, 60 * 86_400_000);
        assert.ok(long.timeoutMs > MAX_TIMER_MS);
        assert.equal((await p.mill.get(long.id))?.timeoutMs, 60 * 86_400_000, 'stored unchanged');
      } finally {
        await p.close();
      }
    });

    it('a handler\'s options export with timeout 0 is refused', async () => {
      const p = await makeProject(engine, { zero: 'export const options = { timeout: 0 };\nexport default async () => null;' });
      try {
        await assert.rejects(p.mill.add('zero'), /invalid "options" export in .*zero\.ts: invalid timeout 0: it must be longer than 0/);
      } finally {
        await p.close();
      }
    });

    it('a payload over the limit is refused with its size, the limit and how to raise it', async () => {
      const p = await makeProject(engine, { echo: 'export default async (x) => x;' });
      try {
        // 1 MB of JSON text by default; "é" takes two bytes of UTF-8, so this is just over.
        const big = { s: `${'é'.repeat(524_284)}a` };
        const bytes = Buffer.byteLength(JSON.stringify(big), 'utf8');
        assert.equal(bytes, 1_048_576 + 1);
        await assert.rejects(
          p.mill.add('echo', big),
          invalid(/the payload of "echo" is 1,048,577 bytes \(1 MB\) of JSON, over the limit of 1,048,576 bytes \(1 MB\); .*raise "limits\.payload" in the config/),
        );
        // Exactly at the limit is fine.
        const fits = await p.mill.add('echo', { s: 'é'.repeat(524_284) });
        assert.equal((fits.payload as { s: string }).s.length, 524_284);
        await assert.rejects(p.mill.addMany([{ name: 'echo' }, { name: 'echo', payload: big }]), /over the limit/);
        assert.equal((await p.mill.list()).length, 1, 'addMany is all or none');
      } finally {
        await p.close();
      }
      const small = await makeProject(engine, { echo: 'export default async (x) => x;' }, { limits: { payload: '1 KB' } });
      try {
        assert.equal(small.mill.config.limits.payloadBytes, 1024);
        await assert.rejects(small.mill.add('echo', { s: 'x'.repeat(1024) }), /1,032 bytes \(1 KB\) of JSON, over the limit of 1,024 bytes \(1 KB\)/);
        await small.mill.add('echo', { s: 'x'.repeat(1000) });
      } finally {
        await small.close();
      }
    });

    it('the NUL character, which jsonb cannot store, is refused in any string of the payload, its keys and text options', async () => {
      const p = await makeProject(engine, { echo: 'export default async (x) => x;' });
      try {
        for (const payload of [{ s: 'a\u0000b' }, { ['k\u0000']: 1 }, ['x', ['\u0000']], { deep: { er: '\\\u0000' } }]) {
          await assert.rejects(p.mill.add('echo', payload), invalid(/the payload of "echo" contains the NUL character \(\\u0000\).*PostgreSQL cannot store/));
        }
        await assert.rejects(p.mill.add('echo', {}, { note: 'a\u0000' }), invalid(/invalid note: it contains the NUL character/));
        await assert.rejects(p.mill.add('echo', {}, { uniqueKey: '\u0000' }), invalid(/invalid uniqueKey: it contains the NUL character/));
        // A backslash followed by "u0000" is ordinary text, and other control characters are fine.
        const ok = await p.mill.add('echo', { s: '\\u0000', t: '\\\\u0000', c: '\u0001\u001f' });
        assert.deepEqual((await p.mill.get(ok.id))?.payload, { s: '\\u0000', t: '\\\\u0000', c: '\u0001\u001f' });
      } finally {
        await p.close();
      }
    });
  });
}

describe('config limits reach the worker', () => {
  it('a result over limits.result fails the attempt, naming the limit', async () => {
    const sqlite = ENGINES.find((e) => e.name === 'sqlite')!;
    const p = await makeProject(sqlite, { big: 'export default async () => ({ s: "x".repeat(5000) });' }, { limits: { result: 1000 } });
    const worker = p.mill.worker();
    try {
      const t = await p.mill.add('big', {}, { maxAttempts: 1 });
      worker.start();
      const done = await p.mill.wait(t.id, { timeout: '20s' });
      assert.equal(done.status, 'FAILED');
      assert.match(done.error ?? '', /over the limit of 1000 \(limits\.result\)/);
    } finally {
      await worker.stop({ timeoutMs: 5000 });
      await p.close();
    }
  });
});
