// An example of slow work pushed out of a web request: re-index records after a delete.
import type { TaskContext } from 'taskmill';

export const options = { queue: 'default', maxAttempts: 5, backoff: '10s', timeout: '5 minutes' };

export default async function reindex(payload: { ids: number[] }, ctx: TaskContext) {
  let done = 0;
  for (const id of payload.ids ?? []) {
    if (ctx.signal.aborted) throw new Error('stopped before finishing; the next attempt starts over');
    await new Promise((resolve) => setTimeout(resolve, 50)); // stands in for the real work
    console.log(`re-indexed record ${id}`);
    done++;
  }
  return { reindexed: done };
}
