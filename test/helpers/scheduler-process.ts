// A scheduler in its own process, for cluster tests. Config comes as JSON in TASKMILL_TEST_CONFIG.
import { Taskmill } from '../../src/client/taskmill.js';

const mill = await Taskmill.open({ config: JSON.parse(process.env.TASKMILL_TEST_CONFIG ?? '{}'), env: {} });
const scheduler = mill.scheduler({ maxSleepMs: 200 });
scheduler.start();
process.stdout.write('ready\n');
const stop = async () => {
  await scheduler.stop();
  await mill.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
