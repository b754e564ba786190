// The chaos suite's verdict from its run records (bench/chaos.mjs writes them; see there).
// Each worker process's file has "S run id pid attempt start" when a handler starts and "E run end"
// when it returns; deaths maps a worker's pid to { at, leases: Map task id -> lease expiry ms }.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// Runs from the records; lost = not COMPLETED, or COMPLETED without any run; overlap = two runs of one
// id whose [start, end] intersect (an unfinished run ends when its lease expired).
export function analyse(runsDir, deaths, notCompleted, completed, leaseMs) {
  const runs = new Map();
  for (const f of readdirSync(runsDir)) {
    for (const l of readFileSync(path.join(runsDir, f), 'utf8').split('\n')) {
      const p = l.split(' ');
      if (p[0] === 'S') runs.set(p[1], { id: Number(p[2]), pid: Number(p[3]), attempt: Number(p[4]), start: Number(p[5]), end: null });
      else if (p[0] === 'E' && runs.has(p[1])) runs.get(p[1]).end = Number(p[2]);
    }
  }
  const byId = new Map();
  let unfinished = 0, guessedLeases = 0;
  for (const r of runs.values()) {
    if (r.end === null) {
      unfinished++;
      const death = deaths.get(r.pid);
      const lease = death?.leases?.get(r.id);
      if (lease === undefined) guessedLeases++;
      r.end = lease ?? (death ? death.at + leaseMs : Date.now());
      r.open = true;
    }
    if (!byId.has(r.id)) byId.set(r.id, []);
    byId.get(r.id).push(r);
  }
  const examples = [];
  let overlapping = 0, rerun = 0;
  for (const [id, rs] of byId) {
    if (rs.length > 1) rerun++;
    rs.sort((a, b) => a.start - b.start);
    const clash = rs.some((a, i) => rs.slice(i + 1).some((b) => b.start < a.end));
    if (clash) {
      overlapping++;
      if (examples.length < 3) examples.push(`task ${id}: ${rs.map((r) => `pid ${r.pid} attempt ${r.attempt} [${r.start}, ${r.end}${r.open ? ' open' : ''}]`).join(', ')}`);
    }
  }
  // Ids run by anyone, against COMPLETED: a COMPLETED task never run would be a phantom completion.
  const notDone = new Set(notCompleted.map((t) => t.id));
  const neverRun = Math.max(0, completed - [...byId.keys()].filter((id) => !notDone.has(id)).length);
  return { completed, lost: notCompleted.length + neverRun, notCompleted: notCompleted.length, neverRun,
    overlapping, rerun, runs: runs.size, unfinished, guessedLeases, examples };
}
