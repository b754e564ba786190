// After tsc: copies the SQL migrations next to the compiled stores (they are read at run time), and
// makes the CLI entry executable, as `npx taskmill` and the package's bin run it directly (tsc writes
// it without the executable bit).
import { chmodSync, cpSync, existsSync } from 'node:fs';

for (const engine of ['sqlite', 'postgres']) {
  const from = `src/store/${engine}/migrations`;
  if (existsSync(from)) cpSync(from, `dist/store/${engine}/migrations`, { recursive: true });
}
if (existsSync('dist/cli/main.js')) chmodSync('dist/cli/main.js', 0o755);
