// One worker process of the chaos suite (bench/chaos.mjs starts three and kills them):
//   node bench/chaos-worker.mjs <{config, cwd} as JSON>
// Runs a taskmill worker (dist/ API) until SIGTERM, then stops it gracefully. Its warnings and
// errors go to stderr, which the suite sends to a log file per process.
import { Taskmill } from '../dist/index.js';

const { config, cwd } = JSON.parse(process.argv[2]);
const say = (level) => (message, context) =>
  process.stderr.write(`${new Date().toISOString()} ${level} ${message}${context ? ` ${JSON.stringify(context)}` : ''}\n`);
const logger = { debug: () => undefined, info: () => undefined, warn: say('warn'), error: say('error') };

const mill = await Taskmill.open({ config, cwd, env: {}, logger });
const worker = mill.worker();
worker.start();
process.stdout.write('ready\n');
const stop = async () => {
  await worker.stop({ timeoutMs: 5000 });
  await mill.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
