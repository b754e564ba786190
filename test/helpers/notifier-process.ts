// A Notifier (and optionally a worker) in its own process, for tests that kill or race real processes.
// Config comes as JSON in TASKMILL_TEST_CONFIG, with `testProcess: { worker, watchDaemons }` beside it;
// prints "ready" once started.
import { Taskmill } from '../../src/client/taskmill.js';
import { Notifier } from '../../src/notify/notifier.js';

const { testProcess = {}, ...config } = JSON.parse(process.env.TASKMILL_TEST_CONFIG ?? '{}') as {
  testProcess?: { worker?: boolean; watchDaemons?: boolean };
};
const mill = await Taskmill.open({ config, env: {} });
const worker = testProcess.worker ? mill.worker() : null;
worker?.start();
const log = {
  debug: () => undefined,
  info: (m: string, c?: object) => process.stdout.write(`info ${m} ${JSON.stringify(c ?? {})}\n`),
  warn: (m: string, c?: object) => process.stdout.write(`warn ${m} ${JSON.stringify(c ?? {})}\n`),
  error: (m: string, c?: object) => process.stdout.write(`error ${m} ${JSON.stringify(c ?? {})}\n`),
};
const notifier = new Notifier({ store: mill.store, config: mill.config, log, role: 'test', watchDaemons: testProcess.watchDaemons ?? false });
notifier.start();
process.stdout.write('ready\n');
const stop = async () => {
  await notifier.stop();
  await worker?.stop({ timeoutMs: 1000 });
  await mill.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
