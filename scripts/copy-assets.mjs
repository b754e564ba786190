// Copies the SQL migrations next to the compiled stores: they are read at run time.
import { cpSync, existsSync } from 'node:fs';

for (const engine of ['sqlite', 'postgres']) {
  const from = `src/store/${engine}/migrations`;
  if (existsSync(from)) cpSync(from, `dist/store/${engine}/migrations`, { recursive: true });
}
