// `taskmill token create --role admin|viewer [--name LABEL]` (prints the token once), `taskmill tokens`,
// `taskmill token revoke ID`: bearer tokens for programs using the HTTP API.
import type { Command } from 'commander';
import { checkRole } from '../../client/auth.js';
import { InvalidInputError } from '../../model/errors.js';
import { wholeNumber } from '../args.js';
import { withMill } from '../open.js';
import { isoSeconds, printJson, printLine, table } from '../output.js';

export function tokenCommand(program: Command): void {
  const token = program.command('token').description('create or revoke a bearer token for the HTTP API (see also "taskmill tokens")');
  token
    .command('create')
    .description('create a token and print it once (only its hash is kept)')
    .requiredOption('--role <role>', 'admin (reads and writes) or viewer (reads only)')
    .option('--name <label>', 'a label saying who uses it')
    .option('--json', 'print JSON')
    .action(async (flags: { role: string; name?: string; json?: boolean }, command: Command) => {
      const role = checkRole(flags.role);
      await withMill(command, async (mill) => {
        const { token: secret, info } = await mill.auth.createToken(role, flags.name ?? null);
        if (flags.json) {
          printJson({ id: info.id, label: info.label, role: info.role, token: secret });
        } else {
          printLine(secret);
          process.stderr.write(`token ${info.id} (${role}${info.label ? `, ${info.label}` : ''}) created; it is shown only now: send it as "Authorization: Bearer TOKEN"\n`);
        }
      });
    });
  token
    .command('revoke')
    .description('revoke a token: requests with it are refused at once')
    .argument('<id>', 'token id, as "taskmill tokens" shows')
    .action(async (idText: string, _flags: object, command: Command) => {
      const id = wholeNumber(idText, 'token id', 1);
      await withMill(command, async (mill) => {
        if (!(await mill.auth.revokeToken(id))) throw new InvalidInputError(`no token ${id}; list them with "taskmill tokens".`);
        printLine(`token ${id} revoked`);
      });
    });

  program
    .command('tokens')
    .description('list the bearer tokens (never the tokens themselves)')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withMill(command, async (mill) => {
        const tokens = await mill.auth.tokens();
        if (flags.json) {
          printJson(tokens.map((t) => ({ ...t, createdAt: t.createdAt.toISOString(), lastUsedAt: t.lastUsedAt?.toISOString() ?? null })));
        } else if (tokens.length === 0) {
          printLine('no tokens; create one with "taskmill token create --role viewer --name LABEL"');
        } else {
          printLine(
            table(
              ['ID', 'LABEL', 'ROLE', 'CREATED', 'LAST USED'],
              tokens.map((t) => [String(t.id), t.label ?? '', t.role, isoSeconds(t.createdAt), t.lastUsedAt ? isoSeconds(t.lastUsedAt) : 'never']),
              [0],
            ),
          );
        }
      });
    });
}
