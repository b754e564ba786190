// `taskmill user add NAME --role admin|viewer`, `taskmill user rm NAME`, `taskmill users`: who may log in
// to the admin page. The password comes from a prompt (echo off) or, with --password-stdin, from stdin.
import type { Command } from 'commander';
import { checkRole } from '../../client/auth.js';
import { InvalidInputError } from '../../model/errors.js';
import { readSecret } from '../secret-input.js';
import { withMill } from '../open.js';
import { isoSeconds, printJson, printLine, table } from '../output.js';

export function userCommand(program: Command): void {
  const user = program.command('user').description('add or remove a user of the admin page (see also "taskmill users")');
  user
    .command('add')
    .description('add a user who logs in with a name and password (prompted, echo off)')
    .argument('<name>', 'user name')
    .requiredOption('--role <role>', 'admin (reads and writes) or viewer (reads only)')
    .option('--password-stdin', 'read the password from standard input (the first line) instead of a prompt')
    .action(async (name: string, flags: { role: string; passwordStdin?: boolean }, command: Command) => {
      const role = checkRole(flags.role);
      const password = await readSecret({ fromStdin: flags.passwordStdin === true, prompt: `Password for ${name}: `, confirm: 'Repeat it: ' });
      await withMill(command, async (mill) => {
        await mill.auth.addUser(name, password, role);
        printLine(`user ${name} added (${role})`);
      });
    });
  user
    .command('rm')
    .description('remove a user; their sessions end at once')
    .argument('<name>', 'user name')
    .action(async (name: string, _flags: object, command: Command) => {
      await withMill(command, async (mill) => {
        if (!(await mill.auth.removeUser(name))) throw new InvalidInputError(`no user named "${name}"; list them with "taskmill users".`);
        printLine(`user ${name} removed`);
      });
    });

  program
    .command('users')
    .description('list the users of the admin page')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withMill(command, async (mill) => {
        const users = await mill.auth.users();
        if (flags.json) printJson(users.map((u) => ({ ...u, createdAt: u.createdAt.toISOString() })));
        else if (users.length === 0) printLine('no users; add one with "taskmill user add NAME --role admin"');
        else printLine(table(['NAME', 'ROLE', 'CREATED'], users.map((u) => [u.name, u.role, isoSeconds(u.createdAt)])));
      });
    });
}
