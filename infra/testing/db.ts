import crypto from 'node:crypto';

import { Client } from 'pg';

import { serviceDatabaseUrls, type DbService } from '../stack/db-roles';
import { waitFor } from './wait';

/** The test cluster's login roles (the global setup creates them; the cluster listens on
 * 127.0.0.1 only). Known to every test so a test may connect as a service does. */
export const TEST_ROLE_PASSWORDS: Record<DbService, string> = {
  billing: 'atelier-test-billing',
  trainer: 'atelier-test-trainer',
  inferencer: 'atelier-test-inferencer',
};

export interface TestDatabase {
  /** As the owner of every schema (Flyway's role): for fixtures that write any service's tables. */
  url: string;
  /** As each service's own login role, which reads and writes its own schema only. */
  serviceUrls: Record<DbService, string>;
  name: string;
  drop(): Promise<void>;
}

/** A database of its own for one test file: a clone of the migrated template made by the jest
 * global setup, or with `{ empty: true }` a blank one (for testing migrations themselves). */
export async function createTestDatabase(opts: { empty?: boolean } = {}): Promise<TestDatabase> {
  const adminUrl = requireEnv('ATELIER_TEST_PG_ADMIN_URL');
  const template = opts.empty ? 'template0' : requireEnv('ATELIER_TEST_TEMPLATE_DB');
  const name = `atelier_test_${process.env.JEST_WORKER_ID ?? '0'}_${crypto.randomBytes(6).toString('hex')}`;

  await withAdmin(adminUrl, async (admin) => {
    // Creating from a template fails while anyone is connected to it (code 55006); the global setup
    // leaves it without connections, but a backend that is still closing can hold it for a moment.
    const outcome = await waitFor(
      async (): Promise<{ error?: Error } | false> => {
        try {
          // FILE_COPY copies the few small files of a test database ~2× faster than the default WAL_LOG.
          await admin.query(`CREATE DATABASE ${ident(name)} TEMPLATE ${ident(template)} STRATEGY FILE_COPY`);
          return {};
        } catch (err) {
          return (err as { code?: string }).code === '55006' ? false : { error: err as Error };
        }
      },
      { timeoutMs: 15_000, what: `template database ${template} to have no connections` },
    );
    if (outcome.error) throw new Error(`CREATE DATABASE ${name} failed: ${outcome.error.message}`);
  });

  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    serviceUrls: serviceDatabaseUrls(url.toString(), TEST_ROLE_PASSWORDS),
    name,
    drop: () =>
      withAdmin(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`)).then(
        () => {},
      ),
  };
}

async function withAdmin<T>(adminUrl: string, fn: (admin: Client) => Promise<T>): Promise<T> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/** A Postgres identifier, quoted. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A variable the global setup sets for every test file. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is not set: run the tests through jest (its global setup starts the stack)`);
  return value;
}
