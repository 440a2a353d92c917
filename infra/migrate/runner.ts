import fs from 'node:fs';
import path from 'node:path';

import { Client } from 'pg';

import { flywayChecksum } from './checksum';

export interface MigrateOptions {
  databaseUrl: string;
  /** Folder of `V<version>__<description>.sql` files (searched recursively, like Flyway). */
  location: string;
  log?: (msg: string) => void;
}

export interface MigrateResult {
  /** Scripts applied by this run, in order. */
  applied: string[];
  /** Schema version after the run, or null when nothing was ever applied. */
  current: string | null;
}

/** A versioned migration found on disk. */
interface Resolved {
  version: Version;
  script: string;
  description: string;
  checksum: number;
  sql: string;
}

/** A row of flyway_schema_history. */
interface Applied {
  installed_rank: number;
  version: string | null;
  description: string;
  type: string;
  script: string;
  checksum: number | null;
  success: boolean;
}

// Flyway on PostgreSQL keeps its history in the first schema of the search path, `public`, when no
// `schemas` are configured; our Flyway config uses the defaults, so the table lives there too.
const HISTORY = '"public"."flyway_schema_history"';
// Serialises runners on one database: held on the runner's connection for the whole run.
const LOCK_KEY = 0x61_74_65_6c_69_65_72n; // "atelier"

/** Applies pending migrations exactly as `flyway migrate` does with default settings, writing the
 * same flyway_schema_history rows, so a database can move between this runner and Flyway. */
export async function migrate(opts: MigrateOptions): Promise<MigrateResult> {
  const log = opts.log ?? (() => {});
  const resolved = resolveMigrations(opts.location);
  const client = new Client({ connectionString: opts.databaseUrl, application_name: 'atelier-migrate' });
  // A dropped connection also rejects the query in flight; without a listener it would crash the process.
  client.on('error', (err) => log(`connection error: ${err.message}`));
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY.toString()]);
    await createHistoryTable(client, log);
    const history = (await client.query<Applied>(`SELECT * FROM ${HISTORY} ORDER BY installed_rank`)).rows;
    const pending = validate(resolved, history, log);

    const applied: string[] = [];
    if (pending.length === 0) log('schema is up to date, no migration necessary');
    const { rows } = await client.query<{ user: string; db: string }>(
      'SELECT current_user AS user, current_database() AS db',
    );
    const { user, db } = rows[0]!;
    let rank = history.reduce((max, row) => Math.max(max, row.installed_rank), 0);
    for (const migration of pending) {
      rank += 1;
      await applyOne(client, migration, rank, user, db, log);
      applied.push(migration.script);
    }
    return { applied, current: currentVersion(history, pending) };
  } finally {
    // Ending the session releases the advisory lock too, even when unlock is never reached.
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY.toString()]).catch(() => {});
    await client.end();
  }
}

async function applyOne(
  client: Client,
  m: Resolved,
  rank: number,
  user: string,
  db: string,
  log: (msg: string) => void,
) {
  log(`migrating to version ${m.version.text} - ${m.description}`);
  const sql = replacePlaceholders(m.sql, m.script, { user, database: db });
  await client.query('BEGIN');
  try {
    const started = performance.now();
    try {
      await client.query(sql);
    } catch (err) {
      throw new Error(
        `migration ${m.script} failed (rolled back, nothing recorded): ${(err as Error).message}`,
        { cause: err },
      );
    }
    const executionTime = Math.round(performance.now() - started);
    await client.query(
      `INSERT INTO ${HISTORY} (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
       VALUES ($1, $2, $3, 'SQL', $4, $5, $6, $7, true)`,
      [rank, m.version.text, m.description, m.script, m.checksum, user, executionTime],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Flyway's validate: refuses to migrate when the history and the files disagree. Returns the
 * migrations to apply, in version order. */
function validate(resolved: Resolved[], history: Applied[], log: (msg: string) => void): Resolved[] {
  const failed = history.find((row) => !row.success);
  if (failed) {
    throw new Error(
      `detected failed migration to version ${failed.version} (${failed.description}) in flyway_schema_history: ` +
        'remove its half-applied changes and its history row, then migrate again',
    );
  }
  const deleted = new Set(
    history.filter((r) => r.type === 'DELETE' && r.version).map((r) => parseVersion(r.version!).key),
  );
  const baseline = history.find((r) => r.type === 'BASELINE' && r.version);
  const baselineVersion = baseline ? parseVersion(baseline.version!) : undefined;
  const byVersion = new Map(resolved.map((m) => [m.version.key, m]));
  const latestResolved = resolved.at(-1)?.version;

  const appliedKeys = new Set<string>();
  let latestApplied: Version | undefined;
  for (const row of history) {
    if (row.type === 'SCHEMA' || row.type === 'BASELINE' || row.type === 'DELETE') continue;
    if (row.version === null) {
      throw new Error(`applied repeatable migration ${row.script} is not supported by this runner`);
    }
    const version = parseVersion(row.version);
    if (deleted.has(version.key)) continue;
    appliedKeys.add(version.key);
    if (!latestApplied || compareVersions(version, latestApplied) > 0) latestApplied = version;

    const local = byVersion.get(version.key);
    if (!local) {
      // Flyway's default ignoreMigrationPatterns ("*:future") tolerates versions newer than any file.
      if (latestResolved && compareVersions(version, latestResolved) < 0) {
        throw new Error(
          `applied migration ${row.script} (version ${row.version}) is missing from the migrations folder`,
        );
      }
      log(`applied version ${row.version} (${row.script}) is newer than the migrations folder; ignoring it`);
      continue;
    }
    if (row.checksum !== local.checksum) {
      throw new Error(
        `checksum mismatch for ${local.script} (version ${row.version}): applied to database ${row.checksum}, ` +
          `resolved locally ${local.checksum}. An applied migration must never be edited; add a new one instead`,
      );
    }
    if (row.type !== 'SQL' || row.description !== local.description || row.script !== local.script) {
      throw new Error(
        `migration version ${row.version} mismatch: database has ${row.type} "${row.description}" (${row.script}), ` +
          `folder has SQL "${local.description}" (${local.script})`,
      );
    }
  }

  const pending = resolved.filter(
    (m) =>
      !appliedKeys.has(m.version.key) &&
      !deleted.has(m.version.key) &&
      !(baselineVersion && compareVersions(m.version, baselineVersion) <= 0),
  );
  const latest = [latestApplied, baselineVersion]
    .filter((v): v is Version => !!v)
    .sort(compareVersions)
    .at(-1);
  const outOfOrder = latest && pending.find((m) => compareVersions(m.version, latest) < 0);
  if (outOfOrder) {
    throw new Error(
      `${outOfOrder.script} (version ${outOfOrder.version.text}) is older than the latest applied version ` +
        `${latest.text} and was never applied: out-of-order migrations are not allowed; give it a higher version`,
    );
  }
  return pending;
}

function currentVersion(history: Applied[], appliedNow: Resolved[]): string | null {
  const versions = [
    ...history
      .filter((r) => r.version !== null && r.success && r.type !== 'DELETE')
      .map((r) => parseVersion(r.version!)),
    ...appliedNow.map((m) => m.version),
  ];
  return versions.sort(compareVersions).at(-1)?.text ?? null;
}

async function createHistoryTable(client: Client, log: (msg: string) => void): Promise<void> {
  const { rows } = await client.query<{ exists: boolean }>(
    `SELECT to_regclass('public.flyway_schema_history') IS NOT NULL AS exists`,
  );
  if (rows[0]?.exists) return;
  log('creating schema history table "public"."flyway_schema_history"');
  // Flyway's DDL for PostgreSQL, verbatim, so Flyway finds the table it would have made.
  await client.query(`BEGIN;
    CREATE TABLE ${HISTORY} (
      "installed_rank" INT NOT NULL, "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL,
      "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL, "checksum" INTEGER,
      "installed_by" VARCHAR(100) NOT NULL, "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
      "execution_time" INTEGER NOT NULL, "success" BOOLEAN NOT NULL);
    ALTER TABLE ${HISTORY} ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
    CREATE INDEX "flyway_schema_history_s_idx" ON ${HISTORY} ("success");
    COMMIT;`);
}

// --- Resolving files -----------------------------------------------------------------------------

const VERSIONED = /^V(\d+(?:[._]\d+)*)__(.*)\.sql$/;

/** Reads every migration under `location`, sorted by version. A `.sql` file that is not a
 * versioned migration is an error rather than silently skipped, as Flyway's
 * validateMigrationNaming=true does: a misnamed file would otherwise never run. */
export function resolveMigrations(location: string): Resolved[] {
  if (!fs.existsSync(location)) throw new Error(`migrations folder ${location} does not exist`);
  const files = fs
    .readdirSync(location, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.sql'))
    .map((e) => path.join(e.parentPath, e.name));

  const migrations = files.map((file): Resolved => {
    const script = path.relative(location, file).split(path.sep).join('/');
    const match = VERSIONED.exec(path.basename(file));
    if (!match) {
      throw new Error(
        `${script} is not named V<version>__<description>.sql (repeatable R__ migrations are not supported)`,
      );
    }
    const content = fs.readFileSync(file);
    let checksum: number;
    try {
      checksum = flywayChecksum(content);
    } catch (err) {
      throw new Error(`${script}: ${(err as Error).message}`);
    }
    return {
      version: parseVersion(match[1]!),
      description: match[2]!.replaceAll('_', ' '),
      script,
      checksum,
      sql: new TextDecoder().decode(content),
    };
  });
  migrations.sort((a, b) => compareVersions(a.version, b.version));
  for (let i = 1; i < migrations.length; i++) {
    const [a, b] = [migrations[i - 1]!, migrations[i]!];
    if (compareVersions(a.version, b.version) === 0) {
      throw new Error(
        `found more than one migration with version ${b.version.text}: ${a.script} and ${b.script}`,
      );
    }
  }
  return migrations;
}

// --- Versions ------------------------------------------------------------------------------------

/** A Flyway version: `text` as stored (`1_1` is stored as `1.1`), compared numerically part by
 * part with trailing zero parts ignored (`1.0` equals `1`). */
export interface Version {
  text: string;
  parts: bigint[];
  /** Equal for equal versions: the normalised parts. */
  key: string;
}

function parseVersion(raw: string): Version {
  const text = raw.replaceAll('_', '.');
  if (!/^\d+(\.\d+)*$/.test(text)) throw new Error(`invalid migration version "${raw}"`);
  const parts = text.split('.').map((p) => BigInt(p));
  while (parts.length > 1 && parts.at(-1) === 0n) parts.pop();
  return { text, parts, key: parts.join('.') };
}

function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < Math.max(a.parts.length, b.parts.length); i++) {
    const x = a.parts[i] ?? 0n;
    const y = b.parts[i] ?? 0n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

// --- Placeholders --------------------------------------------------------------------------------

/** Flyway replaces `${...}` placeholders by default and fails on unknown ones; we support its
 * built-ins that have a fixed meaning and fail the same way on anything else. */
function replacePlaceholders(sql: string, script: string, ctx: { user: string; database: string }): string {
  const builtIns: Record<string, string> = {
    'flyway:defaultSchema': 'public',
    'flyway:user': ctx.user,
    'flyway:database': ctx.database,
    'flyway:table': 'flyway_schema_history',
    'flyway:filename': path.posix.basename(script),
  };
  return sql.replace(/\$\{([^}]*)\}/g, (_, name: string) => {
    const value = builtIns[name];
    if (value === undefined) throw new Error(`${script}: no value provided for placeholder \${${name}}`);
    return value;
  });
}
