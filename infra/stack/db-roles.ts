import fs from 'node:fs';
import path from 'node:path';

import { Client } from 'pg';

import { repoRoot } from './repo-root';

/** The services that log in to Postgres, each as its own role (docs/operations.md, "Database roles"). */
const DB_SERVICES = ['billing', 'trainer', 'inferencer'] as const;
export type DbService = (typeof DB_SERVICES)[number];
export const isDbService = (name: string): name is DbService =>
  (DB_SERVICES as readonly string[]).includes(name);

/**
 * Creates (or re-passwords) the login roles billing, trainer and inferencer with the same script
 * compose's db-roles runs (infra/postgres/login-roles.sql), as the owner, after the migrations
 * (V50 made the NOLOGIN roles they join). Roles belong to the cluster: once is enough for every
 * database on it. Returns each service's connection URL to ownerUrl's database.
 */
export async function ensureLoginRoles(
  ownerUrl: string,
  passwords: Record<DbService, string>,
): Promise<Record<DbService, string>> {
  const script = fs.readFileSync(
    path.join(repoRoot(__dirname), 'infra', 'postgres', 'login-roles.sql'),
    'utf8',
  );
  const client = new Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    await client.query(
      `SELECT set_config('atelier.billing_password', $1, false), set_config('atelier.trainer_password', $2, false),
              set_config('atelier.inferencer_password', $3, false)`,
      [passwords.billing, passwords.trainer, passwords.inferencer],
    );
    await client.query(script);
  } finally {
    await client.end();
  }
  return serviceDatabaseUrls(ownerUrl, passwords);
}

/** The owner's URL with each service's login role and password instead. */
export function serviceDatabaseUrls(
  ownerUrl: string,
  passwords: Record<DbService, string>,
): Record<DbService, string> {
  const url = (service: DbService) => {
    const u = new URL(ownerUrl);
    u.username = service;
    u.password = passwords[service];
    return u.toString();
  };
  return Object.fromEntries(DB_SERVICES.map((s) => [s, url(s)])) as Record<DbService, string>;
}
