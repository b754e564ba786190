// Sizes in bytes: the limits' parser ("1 MB", or a number of bytes) and how JSON is measured against them.
import { InvalidInputError } from '../model/errors.js';

/** The default limit of a payload, a result and a task's output: 1 MB of JSON text (UTF-8). */
export const DEFAULT_LIMIT_BYTES = 1_048_576;

/** The largest limit accepted, well under PostgreSQL's 255 MB cap on one jsonb value. */
export const MAX_LIMIT_BYTES = 200 * 1_048_576;

// Binary units, as people mean them for these sizes: "1 MB" is 1,048,576 bytes.
const UNITS: Record<string, number> = { b: 1, byte: 1, bytes: 1, kb: 1_024, kib: 1_024, mb: 1_048_576, mib: 1_048_576, gb: 1_073_741_824, gib: 1_073_741_824 };

/** Parses "512 KB", "1 MB", "2MiB" or a whole number of bytes. */
export function parseSize(value: string | number, what = 'size'): number {
  let bytes: number | undefined;
  if (typeof value === 'number') {
    bytes = value;
  } else {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(value.trim().toLowerCase());
    const unit = m ? UNITS[m[2] || 'b'] : undefined;
    if (m && unit !== undefined) bytes = Math.round(Number(m[1]) * unit);
  }
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes < 1) {
    throw new InvalidInputError(`invalid ${what} ${JSON.stringify(value)}: write a number of bytes, or a size such as "512 KB" or "1 MB".`);
  }
  return bytes;
}

/** "1,048,576 bytes (1 MB)": exact, then readable. */
export function formatSize(bytes: number): string {
  const exact = `${bytes.toLocaleString('en-US')} bytes`;
  if (bytes >= 1_048_576) return `${exact} (${+(bytes / 1_048_576).toFixed(1)} MB)`;
  if (bytes >= 1_024) return `${exact} (${+(bytes / 1_024).toFixed(1)} KB)`;
  return exact;
}

/** The size of a value as stored: its JSON text in UTF-8. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}
