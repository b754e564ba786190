// ctx.progress: checks a handler's progress report at once, and writes the latest one to the task at most
// every PROGRESS_INTERVAL_MS, so a handler may report in a tight loop. Each write names the attempt: once
// the outcome is written (or the lease is lost) a late write changes nothing.
import { InvalidInputError } from '../model/errors.js';
import type { Logger } from '../model/logger.js';
import type { Json } from '../model/task.js';
import type { AttemptRef, Store } from '../store/store.js';

/** At most one progress write per task in this time. */
export const PROGRESS_INTERVAL_MS = 250;
/** Largest progress object, as JSON text. */
export const MAX_PROGRESS_BYTES = 1_024;
export const MAX_PROGRESS_MESSAGE = 500;

/** A progress report as stored: the value (0–100 or a small object) and an optional message. */
export function checkProgress(value: unknown, message: unknown): { value: Json; message: string | null } {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0 || value > 100) {
      throw new InvalidInputError(`invalid progress ${String(value)}: use a number from 0 to 100, or a small JSON object.`);
    }
  } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch {
      text = undefined;
    }
    if (text === undefined) throw new InvalidInputError('invalid progress: the object is not JSON.');
    if (text.length > MAX_PROGRESS_BYTES) {
      throw new InvalidInputError(
        `invalid progress: ${text.length} characters of JSON, over ${MAX_PROGRESS_BYTES}; report a few numbers ({ done, total }), not data.`,
      );
    }
    value = JSON.parse(text) as Json;
  } else {
    throw new InvalidInputError(
      `invalid progress ${JSON.stringify(value) ?? String(value)}: use a number from 0 to 100, or a small JSON object such as { done: 3, total: 10 }.`,
    );
  }
  if (message !== undefined && message !== null && (typeof message !== 'string' || message.length > MAX_PROGRESS_MESSAGE)) {
    throw new InvalidInputError(`invalid progress message: use a string of at most ${MAX_PROGRESS_MESSAGE} characters.`);
  }
  return { value: value as Json, message: typeof message === 'string' ? message : null };
}

/** One attempt's progress: the latest report, written throttled, until close(). */
export class ProgressWriter {
  private latest: { value: Json; message: string | null; at: Date } | null = null;
  private lastWrite = Number.NEGATIVE_INFINITY;
  private writing = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly ref: AttemptRef,
    private readonly now: () => Date,
    private readonly log: Logger,
  ) {}

  report(value: unknown, message: unknown): void {
    const checked = checkProgress(value, message);
    if (this.closed) return;
    this.latest = { ...checked, at: this.now() };
    this.schedule();
  }

  /** The attempt ended: the pending report (if any) is written now, before the outcome is; then no more. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.latest && !this.writing) this.write();
  }

  private schedule(): void {
    if (this.writing || this.timer) return;
    const wait = this.lastWrite + PROGRESS_INTERVAL_MS - performance.now();
    if (wait <= 0) {
      this.write();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closed) this.write();
    }, wait);
    this.timer.unref();
  }

  private write(): void {
    const p = this.latest;
    if (!p) return;
    this.latest = null;
    this.writing = true;
    this.lastWrite = performance.now();
    this.store
      .setProgress(this.ref, p)
      .catch((err: unknown) => {
        // Progress is advisory: a failed write is logged and the next report tries again.
        this.log.warn('could not store task progress', { id: this.ref.id, error: (err as Error).message });
      })
      .finally(() => {
        this.writing = false;
        // After close, the last report still goes (the store ignores it once the outcome is in).
        if (this.latest) {
          if (this.closed) this.write();
          else this.schedule();
        }
      });
  }
}
