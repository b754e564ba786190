// `taskmill start [--debug] [--foreground]`: the main daemon, detached unless --foreground.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { TaskmillError } from '../../model/errors.js';
import { askDaemon } from '../../daemon/control-socket.js';
import { prepare } from '../../daemon/logging.js';
import { alreadyRunning, findDaemon, readPidFile } from '../../daemon/pid-file.js';
import { daemonPaths } from '../../daemon/protocol.js';
import { Supervisor } from '../../daemon/supervisor.js';
import { globalOptions } from '../open.js';
import { printError, printLine } from '../output.js';

interface StartFlags {
  debug?: boolean;
  foreground?: boolean;
}

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

export function startCommand(program: Command): void {
  program
    .command('start')
    .description('start the daemon (detached unless --foreground): the task worker, the scheduler and the other modules')
    .option('--debug', 'every module logs at debug level (and to the console with --foreground)')
    .option('--foreground', 'stay in the foreground until SIGINT or SIGTERM')
    .action(async (flags: StartFlags, command: Command) => {
      const configFile = globalOptions(command).config;
      const config = loadConfig({ file: configFile });
      await refuseIfRunning(config);
      if (flags.foreground) await runForeground(config, flags);
      else await startDetached(config, flags, configFile);
    });
}

/**
 * A quick refusal with the running daemon's pid. The daemon itself decides again, under the start
 * lock, so two starts at the same moment still leave one daemon.
 */
async function refuseIfRunning(config: Config): Promise<void> {
  const { pid, stale } = await findDaemon(config.varDir, { clean: true });
  if (pid !== null) throw alreadyRunning(pid);
  if (stale !== null) printLine(`removed a stale pid file (${stale.reason})`);
}

async function runForeground(config: Config, flags: StartFlags): Promise<void> {
  const supervisor = new Supervisor({ configFile: config.file, debug: flags.debug === true, foreground: true, announce: printLine });
  await supervisor.start();
  printLine(`taskmill daemon running in the foreground (pid ${process.pid}); logs in ${daemonPaths(config.varDir).logDir}`);
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      // SIGUSR2 is `taskmill stop --force`; a second SIGINT/SIGTERM forces too.
      const force = signal === 'SIGUSR2' || signals > 1;
      printLine(`${signal}: stopping${force ? ' (forced)' : ''}`);
      supervisor.stop(force).then(resolve, (err: Error) => {
        printError(err.message);
        resolve();
      });
    };
    for (const s of ['SIGINT', 'SIGTERM', 'SIGUSR2'] as const) process.on(s, onSignal);
  });
}

export async function startDetached(config: Config, flags: StartFlags, configFile: string | undefined): Promise<number> {
  const paths = daemonPaths(config.varDir);
  // Rotated now if it is from an earlier day, so the daemon's own start-up errors land in today's.
  prepare({ dir: paths.logDir, name: 'daemon', ext: '.out', retentionDays: config.log.retentionDays, now: () => new Date() });
  const out = openSync(paths.outFile, 'a', 0o600);
  const args = [MAIN, ...(configFile ? ['--config', configFile] : []), 'start', '--foreground', ...(flags.debug ? ['--debug'] : [])];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], cwd: process.cwd(), env: process.env });
  child.unref();
  closeSync(out);
  const pid = child.pid ?? 0;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      // Another start won the race: name the daemon that runs.
      const running = await findDaemon(config.varDir);
      if (running.pid !== null) throw alreadyRunning(running.pid);
      break;
    }
    if (readPidFile(paths.pidFile)?.trim() === String(pid)) {
      try {
        await askDaemon(config.varDir, 'status', 2_000);
        printLine(`taskmill daemon started (pid ${pid}); logs in ${paths.logDir}`);
        return pid;
      } catch {
        // the socket is not up yet
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = existsSync(paths.outFile) ? readFileSync(paths.outFile, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
  throw new TaskmillError('DAEMON_FAILED', `the daemon did not start${tail ? `: ${tail}` : ''}; see ${paths.outFile}.`);
}
