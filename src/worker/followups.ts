// The follow-ups of one attempt (ctx.add): validated at once, held until the attempt ends, then written
// with the completion (in the transaction that marks the parent COMPLETED) or dropped with a failure.
//
// ctx.add returns the follow-up's final id at once (before the parent commits): the id is reserved
// in the store up front (PostgreSQL's sequence, SQLite's AUTOINCREMENT counter), so a handler may
// use it as a prerequisite of a later follow-up, or return it, without waiting for the commit (a
// promise that resolved only at the commit would deadlock a handler that awaited it).
import { InvalidInputError, UnknownPrerequisiteError } from '../model/errors.js';
import type { NewTask } from '../model/task.js';
import type { FollowUp, Store } from '../store/store.js';
import type { FollowUpOptions } from './handlers.js';

/** Validates a follow-up as the client's add does (same errors) and resolves its defaults. */
export type PrepareTask = (name: string, payload: unknown, options: FollowUpOptions) => Promise<NewTask>;

export class AttemptFollowUps {
  private readonly items: FollowUp[] = [];
  private readonly underWay = new Set<Promise<number>>();
  private ended = false;

  constructor(
    private readonly store: Store,
    private readonly prepare: PrepareTask,
    private readonly parentId: number,
  ) {}

  /** ctx.add: resolves with the id the follow-up will have (or the live task holding its unique key). */
  add(name: string, payload: unknown, options: FollowUpOptions): Promise<number> {
    const adding = this.addNow(name, payload, options);
    // Tracked while under way, so the attempt can wait for calls its handler did not await.
    this.underWay.add(adding);
    const done = () => void this.underWay.delete(adding);
    adding.then(done, done);
    return adding;
  }

  /**
   * Waits for ctx.add calls still under way when the handler returned (it did not await them);
   * rejects with the error of the first that failed, and the attempt fails with it: a follow-up the
   * handler asked for is never silently missing from a completed parent.
   */
  async whenSettled(): Promise<void> {
    if (this.underWay.size === 0) return;
    for (const r of await Promise.allSettled([...this.underWay])) if (r.status === 'rejected') throw r.reason;
  }

  /** Ends the attempt: no more ctx.add; returns the follow-ups to write with a completion. */
  end(): FollowUp[] {
    this.ended = true;
    return this.items;
  }

  private async addNow(name: string, payload: unknown, options: FollowUpOptions): Promise<number> {
    this.refuseIfEnded();
    const task = await this.prepare(name, payload, options);
    const own = new Set(this.items.map((f) => f.id));
    const others = [...new Set(task.prerequisites)].filter((id) => id !== this.parentId && !own.has(id));
    if (others.length > 0) {
      const found = await Promise.all(others.map((id) => this.store.get(id)));
      const missing = others.filter((_, i) => found[i] === null);
      if (missing.length > 0) throw new UnknownPrerequisiteError(missing);
    }
    if (task.uniqueKey !== null) {
      // As add: a live task with the key is returned instead. The parent itself does not count: it
      // gives its key up when it completes, in the transaction that writes this follow-up.
      const mine = this.items.find((f) => f.task.uniqueKey === task.uniqueKey);
      if (mine) return mine.id;
      const live = await this.store.liveTaskId(task.uniqueKey);
      if (live !== null && live !== this.parentId) return live;
    }
    const [id] = await this.store.reserveTaskIds(1);
    this.refuseIfEnded();
    this.items.push({ id: id as number, task });
    return id as number;
  }

  private refuseIfEnded(): void {
    if (this.ended) throw attemptEnded(this.parentId);
  }
}

/** What ctx.add throws once its attempt has ended (the handler returned, threw, timed out or was stopped). */
export function attemptEnded(taskId: number): InvalidInputError {
  return new InvalidInputError(
    `the attempt of task #${taskId} has ended, so ctx.add adds nothing now: call ctx.add (and await it) before the handler returns.`,
  );
}
