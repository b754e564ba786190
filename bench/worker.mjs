// The worker process that bench/one.mjs forks for drain, latency and lateness (driven over IPC,
// like the peers harness's worker.mjs).
//   node bench/worker.mjs <{config, cwd} as JSON> <concurrency> <expectedTasks>
// -> {type:'ready'} once the store is open; on 'start' starts the worker -> {type:'started'};
// -> {type:'handled-all'} when <expectedTasks> handlers have run;
// on 'stop' stops the worker and replies {type:'stats', count, figures, peakRssMB, cpuMs}.
import { performance } from 'node:perf_hooks';
import { Taskmill } from '../dist/index.js';

const [setup, concurrency, expected] = process.argv.slice(2);
const { config, cwd } = JSON.parse(setup);

// The handlers in the temp tasks folder (see one.mjs) call hit(): the count, and a figure if any.
const bench = { count: 0, figures: [] };
globalThis.__taskmillBench = {
  hit(figure) {
    if (figure !== undefined) bench.figures.push(figure);
    if (++bench.count === Number(expected)) process.send({ type: 'handled-all' });
  },
};

const mill = await Taskmill.open({ config, cwd, env: {} });
// BENCH_TRACE=1: count the store calls the worker makes, their items and wall time (to stderr at stop).
const trace = {};
// For tasks whose payload has t (latency): ms from t to the last store wake-up event before the
// claim, to the claim's start, and to its end (the handler's start is the figure itself).
const stages = { wake: [], claimStart: [], claimEnd: [] };
if (process.env.BENCH_TRACE === '1') {
  let lastWake = 0;
  const subscribe = mill.store.subscribe.bind(mill.store);
  mill.store.subscribe = (listener) => subscribe((e) => { if (e.kind === 'wake') lastWake = Date.now(); listener(e); });
  // The stages of each claimed task that carries t, for a call that began at `start` after the wake-up `wake`.
  const record = (tasks, wake, start) => {
    const end = Date.now();
    for (const { payload } of tasks) {
      if (typeof payload?.t !== 'number') continue;
      if (wake >= payload.t) stages.wake.push(wake - payload.t);
      stages.claimStart.push(start - payload.t);
      stages.claimEnd.push(end - payload.t);
    }
  };
  const claim = mill.store.claim.bind(mill.store);
  mill.store.claim = async (req) => {
    const wake = lastWake, start = Date.now();
    const tasks = await claim(req);
    record(tasks, wake, start);
    return tasks;
  };
  // settle (outcomes + claim in one call) is the worker's main call: items = tasks claimed; outcomes counted apart.
  const settle = mill.store.settle.bind(mill.store);
  const st = (trace.settle = { calls: 0, items: 0, outcomes: 0, ms: 0 });
  mill.store.settle = async (outcomes, claim, now) => {
    const t0 = performance.now();
    const wake = lastWake, start = Date.now();
    try {
      const r = await settle(outcomes, claim, now);
      record(r, wake, start);
      st.items += r.length;
      st.outcomes += outcomes.completions.length + outcomes.failures.length;
      if (process.env.BENCH_TRACE_CALLS && st.calls < 40) process.stderr.write(`settle ${outcomes.completions.length} done, claim ${claim?.limit ?? '-'} -> ${r.length}\n`);
      return r;
    } finally { st.calls++; st.ms += performance.now() - t0; }
  };
  for (const m of ['claim', 'complete', 'fail', 'renew', 'rescueExpired', 'nextRunAt']) {
    const orig = mill.store[m].bind(mill.store);
    const t = (trace[m] = { calls: 0, items: 0, ms: 0 });
    mill.store[m] = async (...args) => {
      const t0 = performance.now();
      try {
        const r = await orig(...args);
        t.items += Array.isArray(r) ? r.length : Array.isArray(args[0]) ? args[0].length : 0;
        return r;
      } finally { t.calls++; t.ms += performance.now() - t0; }
    };
  }
}
const worker = mill.worker({ concurrency: Number(concurrency) });
let cpu0;
process.on('message', async (msg) => {
  if (msg === 'start') {
    cpu0 = process.cpuUsage();
    worker.start();
    process.send({ type: 'started' });
  } else if (msg === 'stop') {
    const cpu = process.cpuUsage(cpu0);
    if (Object.keys(trace).length) console.error('store calls during the run:', JSON.stringify(trace));
    const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length / 2) - 1];
    if (stages.claimStart.length) {
      console.error(`pickup stages, p50 ms after t: wake event ${p50(stages.wake)} (${stages.wake.length} of ${stages.claimStart.length} claimed`
        + ` after one), claim start ${p50(stages.claimStart)}, claim end ${p50(stages.claimEnd)}, handler start ${p50(bench.figures)}`);
    }
    await worker.stop({ timeoutMs: 5000 });
    await mill.close();
    const peakRssMB = process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB
    const stats = { type: 'stats', count: bench.count, figures: bench.figures, peakRssMB,
      cpuMs: { user: cpu.user / 1000, system: cpu.system / 1000 } };
    process.send(stats, () => process.exit(0));
  }
});
process.send({ type: 'ready', rssMB: process.memoryUsage.rss() / 2 ** 20 });
