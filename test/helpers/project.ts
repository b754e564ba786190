// A throw-away project: a tasks folder with the given handlers, on a fresh database.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Taskmill } from '../../src/client/taskmill.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { Engine, TempDatabase } from './engines.js';

export interface Project {
  db: TempDatabase;
  dir: string;
  tasksDir: string;
  config: ConfigInput;
  mill: Taskmill;
  writeHandler(name: string, source: string): void;
  close(): Promise<void>;
}

export async function makeProject(
  engine: Engine,
  handlers: Record<string, string>,
  config: ConfigInput = {},
): Promise<Project> {
  const db = await engine.create();
  const tasksDir = path.join(db.dir, 'tasks');
  mkdirSync(tasksDir, { recursive: true });
  const writeHandler = (name: string, source: string) => {
    const file = path.join(tasksDir, `${name}.ts`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, source);
  };
  for (const [name, source] of Object.entries(handlers)) writeHandler(name, source);
  const full: ConfigInput = {
    database: db.url,
    tasksDir,
    varDir: path.join(db.dir, 'var'),
    ...config,
    worker: { pollInterval: 100, lease: 5000, ...config.worker },
    // Tests run side by side: a server started from this project takes a free port.
    web: { port: 0, ...config.web },
  };
  const mill = await Taskmill.open({ config: full, cwd: db.dir, env: {} });
  return {
    db,
    dir: db.dir,
    tasksDir,
    config: full,
    mill,
    writeHandler,
    close: async () => {
      await mill.close();
      await db.drop();
    },
  };
}
