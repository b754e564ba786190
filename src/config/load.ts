// Finds, reads and validates the config once, at the edge; everything inside trusts the result.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../model/errors.js';
import { type Config, type ConfigInput, configSchema } from './schema.js';

export const CONFIG_FILE_NAME = 'taskmill.config.json';

export interface LoadOptions {
  /** Explicit config file (`--config`); must exist. */
  file?: string;
  /** Directory searched for taskmill.config.json; default the working directory. */
  cwd?: string;
  /** Environment read for TASKMILL_CONFIG and TASKMILL_DATABASE; default process.env. */
  env?: Record<string, string | undefined>;
  /** Values that win over the file (from the API caller). */
  overrides?: ConfigInput;
}

/** Loads the config from file, environment and overrides; throws ConfigError with every problem listed. */
export function loadConfig(options: LoadOptions = {}): Config {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const file = findFile(options.file ?? env.TASKMILL_CONFIG, cwd);
  const fromFile = file ? readJson(file) : {};
  const merged: Record<string, unknown> = { ...fromFile, ...(options.overrides ?? {}) };
  if (env.TASKMILL_DATABASE) merged.database = env.TASKMILL_DATABASE;
  return resolveConfig(merged, file, file ? path.dirname(file) : cwd);
}

/** Validates a config object (already merged) and makes its paths absolute. */
export function resolveConfig(input: unknown, file: string | null, baseDir: string): Config {
  const parsed = configSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error.issues, file));
  const c = parsed.data;
  return {
    ...c,
    database: resolveDatabase(c.database, baseDir),
    tasksDir: path.resolve(baseDir, c.tasksDir),
    varDir: path.resolve(baseDir, c.varDir),
    baseDir,
    file,
  };
}

function findFile(explicit: string | undefined, cwd: string): string | null {
  if (explicit) {
    const file = path.resolve(cwd, explicit);
    if (!existsSync(file)) {
      throw new ConfigError(`config file ${file} does not exist; create it with "taskmill init" or fix the path.`);
    }
    return file;
  }
  const candidate = path.join(cwd, CONFIG_FILE_NAME);
  return existsSync(candidate) ? candidate : null;
}

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}. Fix the syntax and try again.`, {
      cause: err,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`config file ${file} must hold a JSON object such as {"database": "sqlite:var/taskmill.db"}.`);
  }
  return value as Record<string, unknown>;
}

/** Relative SQLite paths are relative to the config file, like every other path in it. */
function resolveDatabase(url: string, baseDir: string): string {
  if (!url.startsWith('sqlite:')) return url;
  const file = url.slice('sqlite:'.length);
  if (file === ':memory:') return url;
  return `sqlite:${path.resolve(baseDir, file)}`;
}

function describeIssues(issues: readonly z.core.$ZodIssue[], file: string | null): string {
  const where = file ? `config file ${file}` : 'config';
  const lines = issues.map((issue) => {
    const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
      return `unknown key ${issue.keys.map((k) => `"${prefix}${k}"`).join(', ')}: remove it or check its spelling`;
    }
    const got = 'input' in issue && issue.input !== undefined ? `got ${JSON.stringify(issue.input)}; ` : '';
    return `key "${key}": ${got}${issue.message}`;
  });
  return `${where} is invalid:\n  - ${lines.join('\n  - ')}`;
}
