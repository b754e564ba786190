// How a task's output grows across attempts: each attempt's lines are appended to the earlier ones,
// and the oldest are dropped past MAX_OUTPUT_LINES, behind one marker line that counts every line
// dropped so far. Both engines apply it (SQLite here, PostgreSQL in its append_output function, see
// migration 004); the conformance suite holds them alike.
import { MAX_OUTPUT_LINES } from '../model/task.js';

const MARKER = /^… (\d+) earlier lines dropped$/;

export function appendOutput(previous: readonly string[], next: readonly string[]): string[] {
  if (previous.length === 0) return [...next];
  const marker = MARKER.exec(previous[0] ?? '');
  const carried = marker ? Number(marker[1]) : 0;
  const lines = [...(marker ? previous.slice(1) : previous), ...next];
  if (lines.length + (marker ? 1 : 0) <= MAX_OUTPUT_LINES) return marker ? [previous[0] as string, ...lines] : lines;
  const dropped = lines.length - (MAX_OUTPUT_LINES - 1);
  return [`… ${carried + dropped} earlier lines dropped`, ...lines.slice(dropped)];
}
