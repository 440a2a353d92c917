import path from 'node:path';

import { repoRoot } from '../stack/repo-root';
import { migrate } from './runner';

const USAGE = 'usage: DATABASE_URL=postgres://… node infra/dist/migrate/cli.js [--location <folder>]';

/** `npm run migrate`: applies flyway/sql (or --location) to DATABASE_URL, the way Flyway would. */
async function main(argv: string[]): Promise<void> {
  let location: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--location' && argv[i + 1]) location = path.resolve(argv[++i]!);
    else if (arg.startsWith('--location=')) location = path.resolve(arg.slice('--location='.length));
    else if (arg === '--help' || arg === '-h') return console.log(USAGE);
    else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error(`DATABASE_URL is not set\n${USAGE}`);
  location ??= path.join(repoRoot(__dirname), 'flyway', 'sql');

  const { applied, current } = await migrate({ databaseUrl, location, log: (msg) => console.log(msg) });
  console.log(`applied ${applied.length} migration(s)${applied.length ? `: ${applied.join(', ')}` : ''}`);
  console.log(`current version: ${current ?? '<< empty schema >>'}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`migrate: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
