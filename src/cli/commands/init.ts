// `taskmill init`: a config file with the defaults and an example handler, to start from.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CONFIG_FILE_NAME } from '../../config/load.js';
import { InvalidInputError } from '../../model/errors.js';
import { globalOptions } from '../open.js';
import { printLine } from '../output.js';

const DEFAULT_CONFIG = {
  database: 'sqlite:var/taskmill.db',
  tasksDir: 'tasks',
  varDir: 'var',
  worker: { concurrency: 10 },
};

const HELLO = `// An example task handler. Its file name is the task's name: tasks/hello.ts is "hello".
// Add one with:  taskmill add hello --payload '{"name": "world"}'
import type { TaskContext } from 'taskmill';

/** Defaults for every "hello" task; each can be overridden when the task is added. */
export const options = { maxAttempts: 3, timeout: '1 minute' };

export default async function hello(payload: { name?: string }, ctx: TaskContext) {
  const name = payload.name ?? 'world';
  ctx.log(\`saying hello to \${name} (attempt \${ctx.task.attempt} of \${ctx.task.maxAttempts})\`);
  return { greeting: \`Hello, \${name}!\` };
}
`;

export function initCommand(program: Command): void {
  program
    .command('init')
    .description(`create ${CONFIG_FILE_NAME} and a tasks/ folder with an example handler`)
    .action((_options: object, command: Command) => {
      const configFile = path.resolve(globalOptions(command).config ?? CONFIG_FILE_NAME);
      if (existsSync(configFile)) {
        throw new InvalidInputError(`${configFile} already exists; edit it, or remove it to start over.`);
      }
      const dir = path.dirname(configFile);
      const tasksDir = path.join(dir, DEFAULT_CONFIG.tasksDir);
      const example = path.join(tasksDir, 'hello.ts');
      mkdirSync(tasksDir, { recursive: true });
      writeFileSync(configFile, `${JSON.stringify(DEFAULT_CONFIG, null, 2)}\n`, { flag: 'wx' });
      printLine(`created ${path.relative(process.cwd(), configFile) || configFile}`);
      writeUnlessPresent(example, HELLO);
      printLine();
      printLine('Next:');
      printLine('  taskmill work                                    # start a worker (Ctrl-C stops it)');
      printLine(`  taskmill add hello --payload '{"name":"world"}'  # in another terminal`);
      printLine('  taskmill tasks                                   # see what happened');
    });
}

function writeUnlessPresent(file: string, content: string): void {
  const shown = path.relative(process.cwd(), file) || file;
  if (existsSync(file)) {
    printLine(`kept    ${shown} (it already exists)`);
    return;
  }
  writeFileSync(file, content, { flag: 'wx' });
  printLine(`created ${shown}`);
}
