// Opens taskmill for a command: config from --config / TASKMILL_CONFIG / ./taskmill.config.json, then the database.
import type { Command } from 'commander';
import { Taskmill } from '../client/taskmill.js';
import { CONFIG_FILE_NAME, loadConfig, resolveConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { printError } from './output.js';
import { DatabaseUnreachableError } from '../model/errors.js';

/** A database that never answers (a firewall dropping packets) must not leave the command hanging. */
const OPEN_TIMEOUT_MS = 15_000;

export interface GlobalOptions {
  config?: string;
}

export function globalOptions(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

export async function openMill(command: Command, { migrate = true }: { migrate?: boolean } = {}): Promise<Taskmill> {
  const { config: file } = globalOptions(command);
  // Loaded first so a broken config is reported as such, and a timeout can name the database.
  const config = loadConfig({ file });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const reason = new Error(`no answer within ${OPEN_TIMEOUT_MS / 1000} s`);
      reject(new DatabaseUnreachableError(redact(config.database), reason));
    }, OPEN_TIMEOUT_MS);
  });
  try {
    return await Promise.race([Taskmill.open({ file, migrate }), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn` with an open Taskmill and closes it afterwards, whatever happened. */
export async function withMill<T>(
  command: Command,
  fn: (mill: Taskmill) => Promise<T>,
  options: { migrate?: boolean } = {},
): Promise<T> {
  const mill = await openMill(command, options);
  try {
    return await fn(mill);
  } finally {
    await mill.close();
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * The config for commands that control a running daemon (stop, status): a broken config file must
 * not keep an operator from stopping the daemon that still runs on the last good one. Then the
 * file's varDir (or the default one beside it) is used, with a warning.
 */
export function configForControl(command: Command): Config {
  const { config: file } = globalOptions(command);
  try {
    return loadConfig({ file });
  } catch (err) {
    const explicit = file ?? process.env.TASKMILL_CONFIG;
    const where = explicit ? path.resolve(explicit) : path.resolve(CONFIG_FILE_NAME);
    if (!existsSync(where)) throw err;
    // The daemon to reach lives in the file's varDir: take it even from a file that fails validation
    // elsewhere, so a broken config never keeps the operator from stopping the running daemon.
    const varDir = readVarDir(where);
    let config = resolveConfig({}, where, path.dirname(where));
    let using = 'the default var directory beside it';
    if (varDir !== undefined) {
      try {
        config = resolveConfig({ varDir }, where, path.dirname(where));
        using = `its varDir "${varDir}"`;
      } catch {
        // varDir itself is what is broken: the default it is
      }
    }
    printError(`warning: ${(err as Error).message}\nUsing ${using} to reach the daemon.`);
    return config;
  }
}

/** The `varDir` of a config file that may be invalid elsewhere; undefined if it cannot be read. */
function readVarDir(file: string): string | undefined {
  try {
    const raw: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (raw && typeof raw === 'object' && 'varDir' in raw && typeof raw.varDir === 'string') return raw.varDir;
  } catch {
    // not JSON: nothing to take from it
  }
  return undefined;
}
