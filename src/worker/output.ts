// Captures what a handler logs, ctx.log and its own console output alike, into that task's output,
// even with many tasks running at once: the task's buffer travels with its async context.
import { AsyncLocalStorage } from 'node:async_hooks';
import { format } from 'node:util';
import { MAX_OUTPUT_LINE_LENGTH, MAX_OUTPUT_LINES } from '../model/task.js';

/** One attempt's output. Costs nothing until the handler prints its first line. */
export class OutputBuffer {
  private list: string[] | null = null;
  private dropped = 0;

  /** At most MAX_OUTPUT_LINES: once lines were dropped, the first is a marker that counts them. */
  get lines(): string[] {
    if (!this.list) return [];
    return this.dropped > 0 ? [`… ${this.dropped} earlier lines dropped`, ...this.list] : this.list;
  }

  push(level: 'log' | 'info' | 'warn' | 'error' | 'debug', args: unknown[]): void {
    let text = format(...args);
    if (level === 'warn' || level === 'error') text = `${level}: ${text}`;
    const lines = (this.list ??= []);
    for (const line of text.split('\n')) {
      lines.push(line.length > MAX_OUTPUT_LINE_LENGTH ? `${line.slice(0, MAX_OUTPUT_LINE_LENGTH)}…` : line);
    }
    const room = this.dropped > 0 ? MAX_OUTPUT_LINES - 1 : MAX_OUTPUT_LINES;
    if (lines.length > room) {
      // Room for the marker too, from the first drop on.
      const excess = lines.length - (MAX_OUTPUT_LINES - 1);
      this.dropped += excess;
      lines.splice(0, excess);
    }
  }
}

const current = new AsyncLocalStorage<OutputBuffer>();
let patched = false;

/** Routes console calls made inside a task to its buffer; calls outside any task pass through. */
function patchConsole(): void {
  if (patched) return;
  patched = true;
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    const original = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      const buffer = current.getStore();
      if (buffer) buffer.push(level, args);
      else original(...args);
    };
  }
}

export function runWithOutput<T>(buffer: OutputBuffer, fn: () => T): T {
  patchConsole();
  return current.run(buffer, fn);
}
