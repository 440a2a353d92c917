import fs from 'node:fs';
import path from 'node:path';

/** The monorepo root: the nearest ancestor whose package.json declares workspaces. Found by walking
 * up so the answer is the same from TypeScript sources (infra/x) and their build (infra/dist/x). */
export function repoRoot(from: string = __dirname): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { workspaces?: unknown };
      if (pkg.workspaces) return dir;
    }
    if (path.dirname(dir) === dir) throw new Error(`no workspace root above ${from}`);
  }
}
