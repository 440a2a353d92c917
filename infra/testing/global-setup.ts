import fs from 'node:fs';
import path from 'node:path';

import { Client } from 'pg';

import { migrate } from '../migrate/runner';
import {
  DataDirInUseError,
  repoRoot,
  startPostgres,
  startRedis,
  startS3,
  ensureLoginRoles,
  type PostgresServer,
} from '../stack';
import { ident, TEST_ROLE_PASSWORDS } from './db';
import { claimRunDir } from './run-dir';

export const TEMPLATE_DB = 'atelier_template';
const BUCKET = 'atelier-test';
/** Prefix of the databases createTestDatabase() makes; leftovers of crashed runs are dropped. */
const CLONE_PREFIX = 'atelier_test_';

export interface TestStack {
  /** Scratch folder of this run (ATELIER_TEST_RUN_DIR), removed by the teardown. */
  runDir: string;
  /** Stop functions of the servers this run started. */
  stops: Array<() => Promise<void>>;
  /** Variables the setup put in process.env, removed again so a next run (jest --watch, same
   * process) does not mistake them for external servers. */
  env: string[];
}

declare global {
  // Read by global-teardown: jest runs both in the same process and context.
  var __ATELIER_TEST_STACK__: TestStack | undefined;
}

/** Starts Postgres, Redis and S3 once per jest run, builds the migrated template database that
 * test files clone, and hands the addresses to the workers through process.env. With
 * ATELIER_TEST_PG_ADMIN_URL already set, the servers are external and only the template is built. */
export default async function globalSetup(): Promise<void> {
  const root = repoRoot(__dirname);
  const migrations = path.join(root, 'flyway', 'sql');
  const log = process.env.ATELIER_TEST_LOG ? (msg: string) => process.stderr.write(`${msg}\n`) : undefined;
  const runDir = await claimRunDir(path.join(root, '.atelier', 'test'), log);
  const stack: TestStack = { runDir, stops: [], env: [] };
  globalThis.__ATELIER_TEST_STACK__ = stack;
  const publish = (vars: Record<string, string>): void => {
    Object.assign(process.env, vars);
    stack.env.push(...Object.keys(vars));
  };
  publish({ ATELIER_TEST_RUN_DIR: runDir, ATELIER_TEST_TEMPLATE_DB: TEMPLATE_DB });

  try {
    const external = process.env.ATELIER_TEST_PG_ADMIN_URL;
    if (external) {
      // The servers are someone else's: only the template is ours to rebuild, never others' databases.
      await buildTemplate(external, migrations, { dropLeftoverClones: false, log });
      await ensureLoginRoles(external, TEST_ROLE_PASSWORDS);
      return;
    }
    const started = <T extends { stop(): Promise<void> }>(server: T): T => (
      stack.stops.push(() => server.stop()),
      server
    );
    const starting = [
      startTestPostgres(path.join(root, '.atelier', 'test'), runDir, log).then(started),
      startRedis({ dir: path.join(runDir, 'redis'), log }).then(started),
      startS3({ dir: path.join(runDir, 's3'), bucket: BUCKET, log }).then(started),
    ] as const;
    // Let every start finish (and register its stop) before giving up on any, so none outlives us.
    await Promise.allSettled(starting);
    const [pg, redis, s3] = await Promise.all(starting);
    await buildTemplate(pg.url, migrations, { dropLeftoverClones: true, log });
    // The mesh's services log in as these (infra/testing/mesh.ts), as in compose: a grant a
    // service lacks fails the tests instead of production.
    await ensureLoginRoles(pg.url, TEST_ROLE_PASSWORDS);
    publish({
      ATELIER_TEST_PG_ADMIN_URL: pg.url,
      REDIS_URL: redis.url,
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_REGION: s3.region,
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    });
  } catch (err) {
    // jest does not run the global teardown when the setup fails.
    await stopStack(stack).catch(() => {});
    throw err;
  }
}

/** The shared data directory is reused across runs (initdb costs seconds); a run that finds it
 * busy (another jest run in this checkout) gets a private one, removed with its run folder. */
async function startTestPostgres(
  base: string,
  runDir: string,
  log?: (msg: string) => void,
): Promise<PostgresServer> {
  try {
    return await startPostgres({ dataDir: path.join(base, 'pg'), log });
  } catch (err) {
    if (!(err instanceof DataDirInUseError)) throw err;
    log?.(`${err.message}; using a private data directory`);
    return startPostgres({ dataDir: path.join(runDir, 'pg'), log });
  }
}

/** (Re)creates the template from the migrations folder. It ends with no open connection and
 * connections disallowed, since CREATE DATABASE … TEMPLATE fails while anyone is connected. */
async function buildTemplate(
  adminUrl: string,
  migrations: string,
  opts: { dropLeftoverClones: boolean; log?: (msg: string) => void },
): Promise<void> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    if (opts.dropLeftoverClones) {
      const { rows } = await admin.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`,
        [CLONE_PREFIX],
      );
      for (const { datname } of rows) await admin.query(`DROP DATABASE ${ident(datname)} WITH (FORCE)`);
    }
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [TEMPLATE_DB]);
    if (rowCount) {
      await admin.query(`ALTER DATABASE ${ident(TEMPLATE_DB)} WITH IS_TEMPLATE false`);
      await admin.query(`DROP DATABASE ${ident(TEMPLATE_DB)} WITH (FORCE)`);
    }
    await admin.query(`CREATE DATABASE ${ident(TEMPLATE_DB)} TEMPLATE template0`);

    const templateUrl = new URL(adminUrl);
    templateUrl.pathname = `/${TEMPLATE_DB}`;
    const { applied, current } = await migrate({
      databaseUrl: templateUrl.toString(),
      location: migrations,
      log: opts.log,
    });
    opts.log?.(
      `template ${TEMPLATE_DB}: applied ${applied.length} migration(s), version ${current ?? 'empty'}`,
    );

    await admin.query(`ALTER DATABASE ${ident(TEMPLATE_DB)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
      TEMPLATE_DB,
    ]);
  } finally {
    await admin.end();
  }
}

export async function stopStack(stack: TestStack): Promise<void> {
  const results = await Promise.allSettled(stack.stops.map((stop) => stop()));
  for (const name of stack.env) delete process.env[name];
  fs.rmSync(stack.runDir, { recursive: true, force: true });
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}
