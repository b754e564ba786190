// Turns command-line text into typed values, refusing bad input with a message that names the option.
import { readFileSync } from 'node:fs';
import { InvalidInputError } from '../model/errors.js';

export function wholeNumber(text: string, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = /^[+-]?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of ${min} or more` : `from ${min} to ${max}`;
    throw new InvalidInputError(`invalid ${option} "${text}": use a whole number ${range}.`);
  }
  return value;
}

/** A task id as printed elsewhere ("7" or "#7"). */
export function taskId(text: string, what = 'task id'): number {
  const value = /^#?\d+$/.test(text.trim()) ? Number(text.trim().replace('#', '')) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidInputError(`invalid ${what} "${text}": use a task id such as 42, as printed by "taskmill add".`);
  }
  return value;
}

/** "a,b" and repeated options alike, blanks dropped. */
export function list(values: string | readonly string[] | undefined): string[] {
  if (values === undefined) return [];
  return (typeof values === 'string' ? [values] : values)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

export function idList(text: string, option: string): number[] {
  const ids = list(text).map((id) => taskId(id, `${option} id`));
  if (ids.length === 0) throw new InvalidInputError(`${option} needs task ids, such as ${option} 12,13.`);
  return ids;
}

const PAYLOAD_EXAMPLE = `pass a JSON object such as '{"to":"a@b.c"}'`;

/** `--payload` is JSON text, or `@path` to read it from a file. */
export function payload(text: string): unknown {
  let source = '--payload';
  let json = text;
  if (text.startsWith('@')) {
    const file = text.slice(1);
    source = `--payload file ${file}`;
    try {
      json = readFileSync(file, 'utf8');
    } catch (err) {
      throw new InvalidInputError(`cannot read ${source}: ${(err as Error).message}.`);
    }
  }
  try {
    return JSON.parse(json) as unknown;
  } catch (err) {
    throw new InvalidInputError(`${source} is not valid JSON: ${(err as Error).message}; ${PAYLOAD_EXAMPLE}.`);
  }
}

/** An ISO-8601 time; Date alone would also take "1" or "May 3". */
export function isoTime(text: string, option: string): Date {
  const date = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text.trim()) || Number.isNaN(date.getTime())) {
    throw new InvalidInputError(`invalid ${option} "${text}": use an ISO-8601 time such as 2026-12-01T09:00:00Z.`);
  }
  return date;
}
