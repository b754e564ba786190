// The SQLite lock holder of the chaos suite: holds the database's write lock in bursts
// (BEGIN IMMEDIATE for 1–3 s, then COMMIT and 1–2 s free), until SIGTERM.
//   node bench/chaos-locker.mjs <database file>
// Prints one line per burst: "held <ms>".
import Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';

const db = new Database(process.argv[2]);
db.pragma('busy_timeout = 10000'); // it waits for the workers' own write transactions like they do
let stopping = false;
process.once('SIGTERM', () => { stopping = true; });
const between = (lo, hi) => lo + Math.random() * (hi - lo);
while (!stopping) {
  db.exec('BEGIN IMMEDIATE');
  const t0 = Date.now();
  await sleep(between(1000, 3000));
  db.exec('COMMIT');
  process.stdout.write(`held ${Date.now() - t0}\n`);
  if (!stopping) await sleep(between(1000, 2000));
}
db.close();
