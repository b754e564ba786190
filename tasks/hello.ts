// An example task: `taskmill add hello --payload '{"name":"Ada"}'`.
import type { TaskContext } from 'taskmill';

export const options = { maxAttempts: 3, timeout: '1 minute' };

export default async function hello(payload: { name?: string }, ctx: TaskContext) {
  const name = payload.name ?? 'world';
  ctx.log(`saying hello to ${name} (attempt ${ctx.task.attempt})`);
  return { greeting: `Hello, ${name}!` };
}
