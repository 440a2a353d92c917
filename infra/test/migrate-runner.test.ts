import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Client } from 'pg';

import { flywayChecksum } from '../migrate/checksum';
import { migrate } from '../migrate/runner';
import { repoRoot } from '../stack/repo-root';
import { createTestDatabase, type TestDatabase } from '../testing';

const fixtures = path.resolve(repoRoot(__dirname), '..', 'shared', 'fixtures', 'flyway-checksums');

let db: TestDatabase;
let client: Client;
let dir: string;

// Every test gets a blank database (the template already carries flyway/sql's history) and an
// empty migrations folder.
beforeEach(async () => {
  db = await createTestDatabase({ empty: true });
  client = new Client({ connectionString: db.url });
  await client.connect();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-migrations-'));
});

afterEach(async () => {
  await client.end();
  await db.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(script: string, sql: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, script)), { recursive: true });
  fs.writeFileSync(path.join(dir, script), sql);
}

const run = () => migrate({ databaseUrl: db.url, location: dir });

async function history() {
  const { rows } = await client.query(
    `SELECT installed_rank, version, description, type, script, checksum, installed_by, installed_on, execution_time, success
       FROM flyway_schema_history ORDER BY installed_rank`,
  );
  return rows as Array<Record<string, unknown>>;
}

async function tableExists(name: string): Promise<boolean> {
  const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [
    name,
  ]);
  return rows[0]!.exists;
}

/** V1 creates a log table; the rest append their version to it, so the log shows the run order. */
function writeOrderedSet(): void {
  write('V10__ten.sql', "INSERT INTO ran (v) VALUES ('10');\n");
  write('V2__two.sql', "INSERT INTO ran (v) VALUES ('2');\n");
  write('V1__create_log.sql', 'CREATE TABLE ran (seq serial PRIMARY KEY, v text NOT NULL);\n');
  write('V1_1__one_one.sql', "INSERT INTO ran (v) VALUES ('1.1');\r\n");
}

describe('migrate', () => {
  it('applies files in numeric version order and records them as Flyway does', async () => {
    writeOrderedSet();
    const before = new Date();

    const result = await run();

    expect(result).toEqual({
      applied: ['V1__create_log.sql', 'V1_1__one_one.sql', 'V2__two.sql', 'V10__ten.sql'],
      current: '10',
    });
    const ran = await client.query<{ v: string }>('SELECT v FROM ran ORDER BY seq');
    expect(ran.rows.map((r) => r.v)).toEqual(['1.1', '2', '10']);

    const checksum = (script: string) => flywayChecksum(fs.readFileSync(path.join(dir, script)));
    const row = (rank: number, version: string, description: string, script: string) => ({
      installed_rank: rank,
      version,
      description,
      type: 'SQL',
      script,
      checksum: checksum(script),
      installed_by: 'postgres',
      installed_on: expect.any(Date),
      execution_time: expect.any(Number),
      success: true,
    });
    const rows = await history();
    expect(rows).toEqual([
      row(1, '1', 'create log', 'V1__create_log.sql'),
      row(2, '1.1', 'one one', 'V1_1__one_one.sql'),
      row(3, '2', 'two', 'V2__two.sql'),
      row(4, '10', 'ten', 'V10__ten.sql'),
    ]);
    for (const { installed_on, execution_time } of rows) {
      expect(Number.isInteger(execution_time) && (execution_time as number) >= 0).toBe(true);
      // TIMESTAMP without zone, written by the UTC server and read by pg as local time.
      expect(installed_on).toBeInstanceOf(Date);
      const utc = (installed_on as Date).getTime() - (installed_on as Date).getTimezoneOffset() * 60_000;
      expect(Math.abs(utc - before.getTime())).toBeLessThan(60_000);
    }
  });

  it('creates flyway_schema_history with exactly Flyway’s DDL, in public', async () => {
    await run();

    const columns = await client.query(
      `SELECT column_name, data_type, character_maximum_length AS len, is_nullable, column_default
         FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = 'flyway_schema_history' ORDER BY ordinal_position`,
    );
    expect(columns.rows).toEqual([
      {
        column_name: 'installed_rank',
        data_type: 'integer',
        len: null,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'version',
        data_type: 'character varying',
        len: 50,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'description',
        data_type: 'character varying',
        len: 200,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'type',
        data_type: 'character varying',
        len: 20,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'script',
        data_type: 'character varying',
        len: 1000,
        is_nullable: 'NO',
        column_default: null,
      },
      { column_name: 'checksum', data_type: 'integer', len: null, is_nullable: 'YES', column_default: null },
      {
        column_name: 'installed_by',
        data_type: 'character varying',
        len: 100,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'installed_on',
        data_type: 'timestamp without time zone',
        len: null,
        is_nullable: 'NO',
        column_default: 'now()',
      },
      {
        column_name: 'execution_time',
        data_type: 'integer',
        len: null,
        is_nullable: 'NO',
        column_default: null,
      },
      { column_name: 'success', data_type: 'boolean', len: null, is_nullable: 'NO', column_default: null },
    ]);
    const indexes = await client.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'flyway_schema_history' ORDER BY indexname`,
    );
    expect(indexes.rows).toEqual([
      {
        indexname: 'flyway_schema_history_pk',
        indexdef:
          'CREATE UNIQUE INDEX flyway_schema_history_pk ON public.flyway_schema_history USING btree (installed_rank)',
      },
      {
        indexname: 'flyway_schema_history_s_idx',
        indexdef:
          'CREATE INDEX flyway_schema_history_s_idx ON public.flyway_schema_history USING btree (success)',
      },
    ]);
  });

  it('does nothing the second time', async () => {
    writeOrderedSet();
    await run();
    const before = await history();

    expect(await run()).toEqual({ applied: [], current: '10' });
    expect(await history()).toEqual(before);
  });

  it('applies only the new files on a later run', async () => {
    writeOrderedSet();
    await run();
    write('V11__eleven.sql', "INSERT INTO ran (v) VALUES ('11');");

    expect(await run()).toEqual({ applied: ['V11__eleven.sql'], current: '11' });
    expect((await history()).map((r) => r.installed_rank)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses an edited applied migration, naming the file and both checksums, and applies nothing', async () => {
    writeOrderedSet();
    await run();
    const recorded = (await history()).find((r) => r.script === 'V2__two.sql')!.checksum as number;
    write('V2__two.sql', "INSERT INTO ran (v) VALUES ('two');\n");
    write('V11__eleven.sql', "INSERT INTO ran (v) VALUES ('11');");
    const edited = flywayChecksum(fs.readFileSync(path.join(dir, 'V2__two.sql')));

    const error = await run().catch((err: Error) => err);

    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('V2__two.sql');
    expect((error as Error).message).toContain(String(recorded));
    expect((error as Error).message).toContain(String(edited));
    expect(await history()).toHaveLength(4);
  });

  it('accepts a reformatted applied migration (line endings and BOM do not change Flyway’s checksum)', async () => {
    writeOrderedSet();
    await run();
    write('V2__two.sql', "\uFEFFINSERT INTO ran (v) VALUES ('2');\r\n\r\n");

    expect(await run()).toEqual({ applied: [], current: '10' });
  });

  it('rolls back a failing migration entirely and records nothing for it', async () => {
    write('V1__ok.sql', 'CREATE TABLE one (id int);');
    write('V2__breaks.sql', 'CREATE TABLE two (id int);\nINSERT INTO two VALUES (1);\nSELECT 1/0;\n');
    write('V3__never.sql', 'CREATE TABLE three (id int);');

    await expect(run()).rejects.toThrow(/V2__breaks\.sql.*division by zero/);

    expect(await tableExists('one')).toBe(true);
    expect(await tableExists('two')).toBe(false);
    expect(await tableExists('three')).toBe(false);
    expect((await history()).map((r) => r.script)).toEqual(['V1__ok.sql']);

    write('V2__breaks.sql', 'CREATE TABLE two (id int);');
    expect((await run()).applied).toEqual(['V2__breaks.sql', 'V3__never.sql']);
  });

  it('lets two concurrent runners apply each file exactly once', async () => {
    write('V1__create_log.sql', 'CREATE TABLE ran (seq serial PRIMARY KEY, v text NOT NULL);');
    for (let v = 2; v <= 6; v++)
      write(`V${v}__step.sql`, `INSERT INTO ran (v) VALUES ('${v}'); SELECT pg_sleep(0.05);`);

    const [a, b] = await Promise.all([run(), run()]);

    expect([...a.applied, ...b.applied].sort()).toEqual(
      [
        'V1__create_log.sql',
        'V2__step.sql',
        'V3__step.sql',
        'V4__step.sql',
        'V5__step.sql',
        'V6__step.sql',
      ].sort(),
    );
    expect([a.applied.length, b.applied.length].sort()).toEqual([0, 6]);
    const ran = await client.query<{ v: string }>('SELECT v FROM ran ORDER BY seq');
    expect(ran.rows.map((r) => r.v)).toEqual(['2', '3', '4', '5', '6']);
    expect((await history()).map((r) => r.version)).toEqual(['1', '2', '3', '4', '5', '6']);
  });

  it('refuses when an applied migration’s file is missing', async () => {
    writeOrderedSet();
    await run();
    fs.rmSync(path.join(dir, 'V2__two.sql'));

    await expect(run()).rejects.toThrow(/V2__two\.sql.*missing/);
  });

  it('tolerates applied versions newer than every file, as Flyway’s default "*:future" does', async () => {
    writeOrderedSet();
    await run();
    fs.rmSync(path.join(dir, 'V10__ten.sql'));

    expect(await run()).toEqual({ applied: [], current: '10' });
  });

  it('refuses a new file older than the latest applied version (no out-of-order)', async () => {
    writeOrderedSet();
    await run();
    write('V3__late.sql', 'SELECT 1;');

    await expect(run()).rejects.toThrow(/V3__late\.sql.*out-of-order/);
    expect(await history()).toHaveLength(4);
  });

  it('refuses to run past a failed migration recorded by Flyway', async () => {
    write('V1__ok.sql', 'SELECT 1;');
    await run();
    await client.query(
      `INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
       VALUES (2, '2', 'half done', 'SQL', 'V2__half_done.sql', 1, 'postgres', 3, false)`,
    );
    write('V2__half_done.sql', 'SELECT 2;');

    await expect(run()).rejects.toThrow(/failed migration to version 2/);
  });

  it('refuses two files with the same version', async () => {
    write('V1__a.sql', 'SELECT 1;');
    write('V1_0__b.sql', 'SELECT 1;');

    await expect(run()).rejects.toThrow(/more than one migration with version/);
  });

  it('refuses a misnamed .sql file instead of silently skipping it', async () => {
    write('V1__ok.sql', 'SELECT 1;');
    write('v2_lowercase.sql', 'SELECT 2;');

    await expect(run()).rejects.toThrow(/v2_lowercase\.sql is not named/);
  });

  it('finds migrations in subfolders and records their relative path, as Flyway does', async () => {
    write('billing/V1__billing.sql', 'SELECT 1;');

    expect((await run()).applied).toEqual(['billing/V1__billing.sql']);
    expect((await history())[0]).toMatchObject({ script: 'billing/V1__billing.sql', description: 'billing' });
  });

  it('replaces Flyway’s built-in placeholders and rejects unknown ones', async () => {
    write(
      'V1__who.sql',
      "CREATE TABLE who AS SELECT '${flyway:user}'::text AS u, '${flyway:defaultSchema}'::text AS s;",
    );
    await run();
    expect((await client.query('SELECT u, s FROM who')).rows).toEqual([{ u: 'postgres', s: 'public' }]);

    write('V2__unknown.sql', "SELECT '${nope}';");
    await expect(run()).rejects.toThrow(/placeholder \$\{nope\}/);
  });

  it('accepts a history written by Flyway itself', async () => {
    // The table as Flyway creates it, with the row Flyway wrote for the fixture it checksummed.
    await client.query(`
      CREATE TABLE "flyway_schema_history" (
        "installed_rank" INT NOT NULL, "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL,
        "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL, "checksum" INTEGER,
        "installed_by" VARCHAR(100) NOT NULL, "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
        "execution_time" INTEGER NOT NULL, "success" BOOLEAN NOT NULL);
      ALTER TABLE "flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
      CREATE INDEX "flyway_schema_history_s_idx" ON "flyway_schema_history" ("success");
      CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
      INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
      VALUES (1, '1', 'init schema', 'SQL', 'V1__init_schema.sql', -713910029, 'flyway', 12, true);`);
    fs.copyFileSync(path.join(fixtures, 'V1__init_schema.sql'), path.join(dir, 'V1__init_schema.sql'));
    write('V2__add_email.sql', 'ALTER TABLE users ADD COLUMN email text;');

    expect(await run()).toEqual({ applied: ['V2__add_email.sql'], current: '2' });
    expect((await history()).map((r) => [r.installed_rank, r.description])).toEqual([
      [1, 'init schema'],
      [2, 'add email'],
    ]);
  });

  it('migrates the real flyway/sql folder', async () => {
    await expect(
      migrate({ databaseUrl: db.url, location: path.join(repoRoot(__dirname), 'flyway', 'sql') }),
    ).resolves.toBeDefined();
  });
});
