// Reads a password without showing it: from a terminal prompt with echo off, or the first line of stdin.
import { InvalidInputError } from '../model/errors.js';

export async function readSecret(o: { fromStdin: boolean; prompt: string; confirm?: string }): Promise<string> {
  if (o.fromStdin || !process.stdin.isTTY) {
    if (!o.fromStdin) throw new InvalidInputError('no terminal to prompt for the password: pass it on standard input with --password-stdin.');
    const text = await readAll();
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line.length === 0) throw new InvalidInputError('no password on standard input: pipe it in, e.g. printf %s "$PASSWORD" | taskmill user add …');
    return line;
  }
  const first = await prompt(o.prompt);
  if (o.confirm !== undefined && (await prompt(o.confirm)) !== first) throw new InvalidInputError('the two passwords differ; try again.');
  return first;
}

async function readAll(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** One line typed with echo off (raw mode); Ctrl-C aborts. */
function prompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let text = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new InvalidInputError('cancelled.'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}
