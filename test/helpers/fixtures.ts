// Small builders shared by tests.
import { DEFAULT_BACKOFF, type NewTask } from '../../src/model/task.js';

export function newTask(name: string, over: Partial<NewTask> = {}): NewTask {
  return {
    name,
    payload: {},
    queue: 'default',
    priority: 0,
    runAt: new Date(0),
    maxAttempts: 3,
    backoff: DEFAULT_BACKOFF,
    timeoutMs: 60_000,
    prerequisites: [],
    uniqueKey: null,
    note: null,
    ...over,
  };
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
