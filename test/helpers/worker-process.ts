// A worker in its own process, for tests that kill or race real processes.
// Config comes as JSON in TASKMILL_TEST_CONFIG; prints "ready" once it claims.
import { Taskmill } from '../../src/client/taskmill.js';

const mill = await Taskmill.open({ config: JSON.parse(process.env.TASKMILL_TEST_CONFIG ?? '{}'), env: {} });
const worker = mill.worker();
worker.start();
process.stdout.write('ready\n');
const stop = async () => {
  await worker.stop({ timeoutMs: 5000 });
  await mill.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
