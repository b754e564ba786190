// Typed payloads: a handler file exporting a Standard Schema (zod here, a real one from a tasks folder)
// makes add refuse a bad payload naming the field, store the validated value, and give its JSON Schema.
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { defineTask, type Handler } from '../../src/index.js';
import { ENGINES } from '../helpers/engines.js';
import { makeProject } from '../helpers/project.js';

const ZOD = JSON.stringify(import.meta.resolve('zod'));
const INDEX = JSON.stringify(pathToFileURL(path.resolve(import.meta.dirname, '../../src/index.ts')).href);

const HANDLERS = {
  mail: `
    import { z } from ${ZOD};
    export const schema = z.object({
      to: z.email(),
      count: z.number().int().min(1).default(1),
      tags: z.array(z.string()).optional(),
    });
    export const example = { to: 'ada@example.com', count: 2 };
    export default async (payload) => payload;`,
  double: `
    import { z } from ${ZOD};
    import { defineTask } from ${INDEX};
    export default defineTask({
      schema: z.object({ n: z.number() }),
      example: { n: 21 },
      options: { maxAttempts: 5 },
      handler: async (payload) => payload.n * 2,
    });`,
  plain: 'export default async () => 1;',
  broken: 'export const schema = { parse: () => 1 };\nexport default async () => 1;',
  forward: `export default async (payload, ctx) => ctx.add('mail', payload);`,
};

const invalid = (pattern: RegExp) => (e: Error & { code?: string }) => {
  assert.equal(e.code, 'INVALID_INPUT', e.message);
  assert.match(e.message, pattern);
  return true;
};

// Types: the payload is typed from the schema (checked by tsc, which runs over the tests).
const typed = defineTask({
  schema: z.object({ n: z.number() }),
  handler: async (payload) => {
    const n: number = payload.n;
    return n;
  },
});
const nSchema = z.object({ n: z.number() });
void nSchema;
const right: Handler<typeof nSchema> = async (payload) => payload.n.toFixed(1);
// @ts-expect-error payload.n is a number, not a string
const wrong: Handler<typeof nSchema> = async (payload) => payload.n.toUpperCase();
void right;
void typed;
void wrong;

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`typed payloads: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('rule: add refuses a payload its schema rejects, naming each field path and the issue', async () => {
      const p = await makeProject(engine, HANDLERS);
      try {
        await assert.rejects(p.mill.add('mail', { to: 'not an email' }), invalid(/invalid payload for "mail": "to": Invalid email/));
        await assert.rejects(p.mill.add('mail', { to: 'a@b.co', tags: ['x', 3] }), invalid(/"tags\[1\]": Invalid input: expected string, received number/));
        await assert.rejects(p.mill.add('mail', {}), invalid(/"to": Invalid input/));
        await assert.rejects(p.mill.add('double', 'seven'), invalid(/invalid payload for "double": payload: Invalid input: expected object/));
        await assert.rejects(
          p.mill.addMany([{ name: 'double', payload: { n: 1 } }, { name: 'double', payload: { n: 'x' } }]),
          invalid(/"n": Invalid input: expected number/),
        );
        assert.equal((await p.mill.query()).tasks.length, 0, 'nothing was added');
        await assert.rejects(p.mill.add('broken'), /the "schema" export of .*broken\.ts is not a Standard Schema validator/);
      } finally {
        await p.close();
      }
    });

    it('rule: the validated payload is stored (defaults filled in), and a handler adding through ctx.add is checked too', async () => {
      const p = await makeProject(engine, HANDLERS);
      const worker = p.mill.worker();
      try {
        const t = await p.mill.add('mail', { to: 'ada@example.com' });
        assert.deepEqual(t.payload, { to: 'ada@example.com', count: 1 });
        const d = await p.mill.add('double', { n: 4 });
        assert.equal(d.maxAttempts, 5, 'defineTask carries options');
        const bad = await p.mill.add('forward', { to: 'nope' });
        worker.start();
        assert.equal((await p.mill.wait(d.id, { timeout: '20s' })).result, 8);
        const failed = await p.mill.wait(bad.id, { timeout: '20s' });
        assert.match(failed.error ?? '', /invalid payload for "mail": "to": Invalid email/);
      } finally {
        await worker.stop({ timeoutMs: 1000 });
        await p.close();
      }
    });

    it('rule: taskSchema gives the JSON Schema and the example, null parts without them, null for no handler', async () => {
      const p = await makeProject(engine, HANDLERS);
      try {
        const mail = await p.mill.taskSchema('mail');
        const schema = mail?.jsonSchema as { type: string; properties: Record<string, { type?: string; format?: string }>; required: string[] };
        assert.equal(schema.type, 'object');
        assert.equal(schema.properties.to?.format, 'email');
        assert.deepEqual(schema.required, ['to']);
        assert.deepEqual(mail?.example, { to: 'ada@example.com', count: 2 });
        assert.deepEqual((await p.mill.taskSchema('double'))?.example, { n: 21 });
        assert.deepEqual(await p.mill.taskSchema('PLAIN'), { jsonSchema: null, example: null });
        assert.equal(await p.mill.taskSchema('nothing'), null);
        await assert.rejects(p.mill.taskSchema('../x'), invalid(/invalid task name/));
      } finally {
        await p.close();
      }
    });
  });
}
