// After tsc: copies the SQL migrations next to the compiled stores and the admin page's assets next to
// the compiled pages (both are read at run time), and
// makes the CLI entry executable, as `npx taskmill` and the package's bin run it directly (tsc writes
// it without the executable bit).
import { chmodSync, cpSync, existsSync } from 'node:fs';

for (const engine of ['sqlite', 'postgres']) {
  const from = `src/store/${engine}/migrations`;
  if (existsSync(from)) cpSync(from, `dist/store/${engine}/migrations`, { recursive: true });
}
// The admin page's stylesheet, script and icon, served from the package (no CDN).
if (existsSync('src/web/assets')) cpSync('src/web/assets', 'dist/web/assets', { recursive: true });
if (existsSync('dist/cli/main.js')) chmodSync('dist/cli/main.js', 0o755);
