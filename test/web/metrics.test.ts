// /metrics: authenticated, in the Prometheus text format, with the tasks' counts, durations, failed
// attempts, lateness and the daemons' heartbeats, on both engines.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENGINES } from '../helpers/engines.js';
import { startWeb } from '../helpers/web.js';

/**
 * Parses the text format strictly enough that a malformed line fails: name{labels} value. NaN is read
 * whatever its case, as Prometheus reads it (prom-client writes an empty event-loop histogram's mean as "Nan").
 */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn][Aa][Nn]|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return samples;
}

for (const engine of ENGINES) {
  const available = await engine.available();
  describe(`metrics: ${engine.name}`, { skip: available ? false : 'PostgreSQL not reachable' }, () => {
    it('counts tasks, durations and failed attempts in the Prometheus format, behind authentication', async () => {
      const web = await startWeb(engine, {
        handlers: {
          echo: 'export default async (p: unknown) => p;',
          boom: 'export default async () => { throw new Error("boom"); };',
        },
      });
      try {
        assert.equal((await fetch(`${web.base}/metrics`)).status, 401);
        const { token } = await web.project.mill.auth.createToken('viewer', 'prometheus');
        const scrape = async () => {
          const res = await fetch(`${web.base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
          assert.equal(res.status, 200);
          assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
          return parse(await res.text());
        };
        assert.equal((await scrape()).get('taskmill_tasks_finished_total{name="echo",status="COMPLETED"}'), undefined);

        const mill = web.project.mill;
        const ids = [
          ...(await mill.addMany([{ name: 'echo' }, { name: 'echo' }, { name: 'echo' }])).map((t) => t.id),
          (await mill.add('boom', {}, { maxAttempts: 2, backoff: 0 })).id,
          (await mill.add('echo', {}, { delay: '1 hour', queue: 'later' })).id,
        ];
        const worker = mill.worker({ concurrency: 4 });
        worker.start();
        try {
          for (const id of ids.slice(0, 4)) await mill.wait(id, { timeout: '60s' });
        } finally {
          await worker.stop({ timeoutMs: 5_000 });
        }
        const m = await scrape();
        assert.equal(m.get('taskmill_tasks{status="COMPLETED",queue="default"}'), 3);
        assert.equal(m.get('taskmill_tasks{status="FAILED",queue="default"}'), 1);
        assert.equal(m.get('taskmill_tasks{status="WAITING",queue="later"}'), 1);
        assert.equal(m.get('taskmill_worker_slots_busy{queue="default"}'), 0);
        assert.equal(m.get('taskmill_tasks_finished_total{name="echo",status="COMPLETED"}'), 3);
        assert.equal(m.get('taskmill_tasks_finished_total{name="boom",status="FAILED"}'), 1);
        assert.equal(m.get('taskmill_attempts_failed_total{name="boom"}'), 2);
        assert.equal(m.get('taskmill_task_duration_seconds_count{name="echo",status="COMPLETED"}'), 3);
        assert.equal(m.get('taskmill_scheduling_lateness_seconds_count{name="echo"}'), 3);
        assert.equal(m.get('taskmill_daemons_running'), 0);
        // A second scrape does not count the same tasks again.
        const again = await scrape();
        assert.equal(again.get('taskmill_tasks_finished_total{name="echo",status="COMPLETED"}'), 3);
        assert.equal(again.get('taskmill_attempts_failed_total{name="boom"}'), 2);
      } finally {
        await web.close();
      }
    });
  });
}
