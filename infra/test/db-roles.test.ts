/**
 * Per-service Postgres roles (flyway/sql/V50__service_roles.sql and infra/postgres/login-roles.sql):
 * each service's login role reads and writes every table of its own schema, and nothing else —
 * no other schema, no Flyway history, no DDL. Checked on a clone of the migrated template, so a
 * later migration that leaves a table ungranted fails here.
 */
import fs from 'node:fs';
import path from 'node:path';

import { Client } from 'pg';

import { repoRoot } from '../stack/repo-root';
import { createTestDatabase, startMesh, TEST_ROLE_PASSWORDS, waitFor, type TestDatabase } from '../testing';

const SERVICES = ['billing', 'trainer', 'inferencer'] as const;
const LOGIN_ROLES = fs.readFileSync(
  path.join(repoRoot(__dirname), 'infra', 'postgres', 'login-roles.sql'),
  'utf8',
);

let db: TestDatabase;
let admin: Client;

async function createLoginRoles(client: Client, passwords: Record<string, string>): Promise<void> {
  for (const [service, value] of Object.entries(passwords))
    await client.query(`SELECT set_config($1, $2, false)`, [`atelier.${service}_password`, value]);
  await client.query(LOGIN_ROLES);
}

async function connectAs(service: (typeof SERVICES)[number]): Promise<Client> {
  const client = new Client({ connectionString: db.serviceUrls[service] });
  await client.connect();
  return client;
}

/** The SQLSTATE a statement fails with, or 'ok'. */
async function outcome(client: Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  admin = new Client({ connectionString: db.url });
  await admin.connect();
  // Again: the global setup ran it already, and re-running it (every `docker compose up`, a
  // password rotation) must work. With the test cluster's passwords: the roles are the cluster's,
  // and every mesh of this run logs in with them meanwhile.
  await createLoginRoles(admin, TEST_ROLE_PASSWORDS);
});

afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

it('grants each role every table and sequence of its schema, and only of its schema', async () => {
  const { rows } = await admin.query<{ role: string; object: string; granted: boolean }>(
    `SELECT r.rolname AS role, n.nspname || '.' || c.relname AS object,
            CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(r.oid, c.oid, 'USAGE, SELECT, UPDATE')
                 ELSE has_table_privilege(r.oid, c.oid, 'SELECT, INSERT, UPDATE, DELETE') END AS granted
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN pg_roles r
      WHERE c.relkind IN ('r', 'p', 'S', 'v')
        AND n.nspname IN ('billing', 'trainer', 'inferencer', 'public')
        AND r.rolname IN ('atelier_billing', 'atelier_trainer', 'atelier_inferencer')`,
  );
  const own = (role: string, object: string) => role === `atelier_${object.split('.')[0]}`;
  expect(rows.filter((r) => own(r.role, r.object)).length).toBeGreaterThan(20);
  expect(
    rows.filter((r) => own(r.role, r.object) && !r.granted).map((r) => `${r.role} lacks ${r.object}`),
  ).toEqual([]);
  expect(
    rows.filter((r) => !own(r.role, r.object) && r.granted).map((r) => `${r.role} has ${r.object}`),
  ).toEqual([]);
});

it.each(SERVICES)('lets %s read and write its own schema and nothing else', async (service) => {
  const client = await connectAs(service);
  try {
    const { rows } = await client.query<{ table: string }>(
      `SELECT table_name AS table FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1 LIMIT 1`,
      [service],
    );
    const own = `${service}.${rows[0]!.table}`;
    expect(await outcome(client, `SELECT * FROM ${own} LIMIT 1 FOR UPDATE`)).toBe('ok');
    expect(await outcome(client, `DELETE FROM ${own} WHERE false`)).toBe('ok');
    for (const other of SERVICES.filter((s) => s !== service)) {
      const { rows: theirs } = await admin.query<{ table: string }>(
        `SELECT table_name AS table FROM information_schema.tables WHERE table_schema = $1 LIMIT 1`,
        [other],
      );
      expect({
        other,
        read: await outcome(client, `SELECT 1 FROM ${other}.${theirs[0]!.table} LIMIT 1`),
      }).toEqual({
        other,
        read: '42501',
      });
    }
    // 42501 insufficient_privilege for each: no Flyway history, no DDL anywhere.
    expect({
      history: await outcome(client, 'SELECT 1 FROM public.flyway_schema_history LIMIT 1'),
      createOwn: await outcome(client, `CREATE TABLE ${service}.intruder (id int)`),
      createPublic: await outcome(client, 'CREATE TABLE public.intruder (id int)'),
      drop: await outcome(client, `DROP TABLE ${own}`),
      alter: await outcome(client, `ALTER TABLE ${own} ADD COLUMN intruder int`),
      truncate: await outcome(client, `TRUNCATE ${own}`),
    }).toEqual({
      history: '42501',
      createOwn: '42501',
      createPublic: '42501',
      drop: '42501',
      alter: '42501',
      truncate: '42501',
    });
  } finally {
    await client.end();
  }
});

it('refuses to create a login role without its password', async () => {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query(`SELECT set_config('atelier.billing_password', 'x', false)`);
    await expect(client.query(LOGIN_ROLES)).rejects.toThrow(/no password for the trainer role/);
  } finally {
    await client.end();
  }
});

it('runs the mesh with each service logged in as its own role, the owner only for fixtures', async () => {
  const mesh = await startMesh();
  try {
    // Every pool has connected by the time the services report healthy (they ping Postgres).
    const users = await waitFor(
      async () => {
        const { rows } = await admin.query<{ usename: string }>(
          'SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = $1 ORDER BY 1',
          [mesh.db.name],
        );
        const names = rows.map((r) => r.usename);
        return SERVICES.every((s) => names.includes(s)) ? names : undefined;
      },
      { what: 'billing, trainer and inferencer to connect as their roles' },
    );
    const owner = new URL(mesh.db.url).username;
    // The owner connects only from this test's side (fixtures); no service pool uses it.
    expect(users.filter((u) => u !== owner).sort()).toEqual([...SERVICES].sort());
    expect(new URL(mesh.env.DATABASE_URL!).username).toBe(owner);
  } finally {
    await mesh.stop();
  }
});
