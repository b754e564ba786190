// A worker in its own process whose store call that writes a completion carrying follow-ups is
// watched, so a test can SIGKILL the process at a known point (a test hook, not a production path):
//   TASKMILL_TEST_HOOK=before  prints "settling" and never writes it (killed between the handler's
//                              return and the commit);
//   TASKMILL_TEST_HOOK=after   writes it, then prints "settled" (killed right after the commit).
import { Taskmill } from '../../src/client/taskmill.js';
import type { ClaimRequest, Outcomes } from '../../src/store/store.js';

const mill = await Taskmill.open({ config: JSON.parse(process.env.TASKMILL_TEST_CONFIG ?? '{}'), env: {} });
const hook = process.env.TASKMILL_TEST_HOOK;
const settle = mill.store.settle.bind(mill.store);
mill.store.settle = async (outcomes: Outcomes, claim: ClaimRequest | null, now: Date) => {
  const carrying = outcomes.completions.some((c) => (c.followUps?.length ?? 0) > 0);
  if (carrying && hook === 'before') {
    process.stdout.write('settling\n');
    return new Promise(() => undefined);
  }
  const claimed = await settle(outcomes, claim, now);
  if (carrying && hook === 'after') process.stdout.write('settled\n');
  return claimed;
};
const worker = mill.worker();
worker.start();
process.stdout.write('ready\n');
