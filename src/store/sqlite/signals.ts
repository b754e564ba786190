// Wake-ups, cancels and schedule changes for the SQLite store: an emitter within one process, and
// one-byte signal files beside the database between processes (`<file>-wake`, `-cancel`, `-schedules`).
// After each commit that matters to others the writer rewrites its file's byte; other processes watch
// those three files alone (inotify), never the folder, and re-arm a watch that failed or whose file
// was replaced. Watching the WAL instead fired mid-commit, so woken claims collided with the writer.
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, type FSWatcher, fstatSync, openSync, watch, writeSync } from 'node:fs';
import type { StoreEvent } from '../store.js';
import { guardListener } from '../store.js';

const KINDS = ['wake', 'cancel', 'schedules'] as const;
type Kind = (typeof KINDS)[number];

const REMOTE_EVENT: Record<Kind, StoreEvent> = {
  wake: { kind: 'wake' },
  // The file carries no id: a worker that hears it checks its own tasks at once.
  cancel: { kind: 'cancel', id: null },
  schedules: { kind: 'schedules' },
};

/** How soon a failed watch is tried again. Polling still finds due tasks meanwhile; only latency is lost. */
const REARM_MS = 1_000;

/** One emitter per file, so a client and a worker in one process wake each other at once. */
const emitters = new Map<string, EventEmitter>();
function emitterFor(file: string): EventEmitter {
  let e = emitters.get(file);
  if (!e) {
    e = new EventEmitter();
    e.setMaxListeners(0);
    emitters.set(file, e);
  }
  return e;
}

export class SqliteSignals {
  private readonly local: EventEmitter;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private readonly watchers = new Map<Kind, FSWatcher>();
  private readonly rearmTimers = new Map<Kind, NodeJS.Timeout>();
  private readonly writers = new Map<Kind, number>();
  private closed = false;

  constructor(private readonly file: string) {
    this.local = emitterFor(file);
  }

  private get crossProcess(): boolean {
    return this.file !== ':memory:';
  }

  /** Events from this process (at once) and from others (through the files). */
  subscribe(listener: (event: StoreEvent) => void): () => void {
    const guarded = guardListener(listener);
    this.local.on('event', guarded);
    this.listeners.add(guarded);
    if (this.listeners.size === 1 && this.crossProcess && !this.closed) for (const kind of KINDS) this.arm(kind);
    return () => {
      this.local.off('event', guarded);
      this.listeners.delete(guarded);
      if (this.listeners.size === 0) this.disarm();
    };
  }

  /** Tells this process's subscribers, then other processes' (call it after the commit). */
  emit(event: StoreEvent): void {
    this.local.emit('event', event);
    if (!this.crossProcess || this.closed) return;
    try {
      // One byte rewritten in place through a kept descriptor: a page-cache write that inotify reports,
      // where re-creating the file costs a metadata update (a millisecond on a busy disk). A file
      // someone removed is opened anew, or the watchers (who re-armed on the new one) would not hear.
      let fd = this.writers.get(event.kind);
      if (fd !== undefined && fstatSync(fd).nlink === 0) {
        closeSync(fd);
        fd = undefined;
      }
      if (fd === undefined) {
        fd = openSync(this.path(event.kind), 'w');
        this.writers.set(event.kind, fd);
      }
      writeSync(fd, '1', 0);
    } catch {
      // Only latency is lost: other processes poll too.
    }
  }

  close(): void {
    this.closed = true;
    for (const l of this.listeners) this.local.off('event', l);
    this.listeners.clear();
    this.disarm();
    for (const fd of this.writers.values()) closeSync(fd);
    this.writers.clear();
  }

  private path(kind: Kind): string {
    return `${this.file}-${kind}`;
  }

  private arm(kind: Kind): void {
    if (this.closed || this.listeners.size === 0 || this.watchers.has(kind)) return;
    const file = this.path(kind);
    try {
      // Watching needs the file; 'a' creates it without truncating one a writer keeps open.
      if (!existsSync(file)) closeSync(openSync(file, 'a'));
      const watcher = watch(file, { persistent: false }, (type) => {
        this.deliver(kind);
        // The file was removed or replaced: this watch is dead; watch the new one.
        if (type === 'rename') this.rearm(kind, 0);
      });
      watcher.on('error', () => this.rearm(kind, REARM_MS));
      this.watchers.set(kind, watcher);
    } catch {
      this.rearm(kind, REARM_MS);
    }
  }

  private rearm(kind: Kind, delayMs: number): void {
    this.watchers.get(kind)?.close();
    this.watchers.delete(kind);
    if (this.closed || this.rearmTimers.has(kind)) return;
    const timer = setTimeout(() => {
      this.rearmTimers.delete(kind);
      this.arm(kind);
    }, delayMs);
    timer.unref();
    this.rearmTimers.set(kind, timer);
  }

  private disarm(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const t of this.rearmTimers.values()) clearTimeout(t);
    this.rearmTimers.clear();
  }

  private deliver(kind: Kind): void {
    for (const l of this.listeners) l(REMOTE_EVENT[kind]);
  }
}
