// The control socket (varDir/daemon/control.sock): one JSON request line, one JSON answer, then the
// connection closes. The server is the main daemon's; the client is the CLI's (status, stop, …).
// Only the owner reaches it: its folder is 0700 and the socket itself 0600.
import { chmodSync, mkdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { daemonPaths } from './protocol.js';

export const CONTROL_COMMANDS = ['status', 'summary', 'identity'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

/** What the daemon answers to "identity": enough to tell it is the daemon of this varDir. */
export interface DaemonIdentity {
  pid: number;
  /** The daemon's varDir, resolved (symbolic links followed). */
  varDir: string;
  startedAt: string;
}

/** A request line longer than this is refused: no client needs more, and nobody may fill our memory. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** A connection that sends no complete line within this long is closed. */
const IDLE_MS = 10_000;

export interface ControlServer {
  /** Stops listening, ends open connections and removes the socket file (if it is still ours). */
  close(): Promise<void>;
}

/** Creates the 0700 folder that holds the socket and the pid file. */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir honours the umask and leaves an existing folder as it was.
  chmodSync(dir, 0o700);
}

/**
 * Listens on `socket` (a file left by a dead daemon is replaced: the caller holds the start lock).
 * `answer` may throw; the client then gets `{"error": message}`.
 */
export async function listenControl(
  socket: string,
  answer: (cmd: ControlCommand) => unknown,
  onError: (message: string, context: Record<string, unknown>) => void,
): Promise<ControlServer> {
  rmSync(socket, { force: true });
  const conns = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => undefined); // a client that goes away mid-answer is not our problem
    handle(conn, answer, onError);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => onError('control socket error', { error: err.message }));
  chmodSync(socket, 0o600);
  const ino = statSync(socket).ino;
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.destroy();
        server.close(() => {
          // A daemon started after this one stopped answering may own the path by now.
          try {
            if (statSync(socket).ino === ino) rmSync(socket, { force: true });
          } catch {
            // already gone
          }
          resolve();
        });
      }),
  };
}

function handle(conn: net.Socket, answer: (cmd: ControlCommand) => unknown, onError: (message: string, context: Record<string, unknown>) => void): void {
  conn.setEncoding('utf8');
  conn.setTimeout(IDLE_MS, () => conn.destroy());
  let buf = '';
  let done = false;
  const reply = (value: unknown) => {
    // After the answer the connection is closed, whatever the client still sends.
    conn.end(`${JSON.stringify(value)}\n`, () => conn.destroy());
  };
  const refuse = (error: string) => {
    done = true;
    reply({ error });
  };
  conn.on('data', (chunk: string) => {
    if (done) return;
    buf += chunk;
    const nl = buf.indexOf('\n');
    const line = nl === -1 ? buf : buf.slice(0, nl);
    if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) return refuse(`request line longer than ${MAX_REQUEST_BYTES} bytes`);
    if (nl === -1) return;
    done = true;
    let cmd: unknown;
    try {
      const request: unknown = JSON.parse(line);
      cmd = request && typeof request === 'object' && 'cmd' in request ? request.cmd : undefined;
    } catch {
      return refuse('bad request: not a JSON line such as {"cmd":"status"}');
    }
    if (typeof cmd !== 'string' || !(CONTROL_COMMANDS as readonly string[]).includes(cmd)) {
      return refuse(`unknown command ${JSON.stringify(cmd)}; expected one of ${CONTROL_COMMANDS.join(', ')}`);
    }
    Promise.resolve()
      .then(() => answer(cmd as ControlCommand))
      .then(reply, (err: Error) => {
        onError('control request failed', { cmd, error: err.message });
        reply({ error: err.message });
      });
  });
}

/** Why asking the daemon failed: nobody listens (`absent`), or someone does but does not answer. */
export class ControlSocketError extends Error {
  constructor(
    message: string,
    readonly reason: 'absent' | 'silent' | 'refused',
  ) {
    super(message);
  }
}

/** Asks the daemon of `varDir` over its control socket. */
export function askDaemon<T>(varDir: string, cmd: ControlCommand, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(daemonPaths(varDir).socket);
    conn.setEncoding('utf8');
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new ControlSocketError(`the daemon did not answer "${cmd}" within ${timeoutMs / 1000} s`, 'silent'));
    }, timeoutMs);
    conn.on('connect', () => conn.write(`${JSON.stringify({ cmd })}\n`));
    conn.on('data', (d: string) => (buf += d));
    conn.on('end', () => {
      clearTimeout(timer);
      let value: unknown;
      try {
        value = JSON.parse(buf);
      } catch {
        return reject(new ControlSocketError(`the daemon's answer to "${cmd}" is not JSON: ${buf.slice(0, 200)}`, 'silent'));
      }
      if (value && typeof value === 'object' && 'error' in value) {
        return reject(new ControlSocketError(`the daemon refused "${cmd}": ${String(value.error)}`, 'refused'));
      }
      resolve(value as T);
    });
    conn.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const absent = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      reject(new ControlSocketError(`cannot reach the daemon's control socket: ${err.message}`, absent ? 'absent' : 'silent'));
    });
  });
}
