/**
 * The operator CLI, run as operators run it (`npm run admin -- …` runs this built file) against a
 * live billing service. `make test` builds before jest runs.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startMesh, type Mesh } from '@atelier/infra/testing';

const CLI = path.resolve(__dirname, '../dist/admin/cli.js');
let mesh: Mesh;

beforeAll(async () => {
  mesh = await startMesh();
});
afterAll(() => mesh?.stop());

async function admin(...args: string[]): Promise<unknown> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], {
    env: { ...process.env, BILLING_ADDR: mesh.env.BILLING_ADDR },
  });
  return JSON.parse(stdout);
}

it('creates an account whose key works, lists it, issues and revokes keys, and upserts plans', async () => {
  const email = `ops-${Date.now()}@example.com`;
  const created = (await admin('accounts', 'create', '--email', email)) as {
    account_id: string;
    api_key: string;
  };
  expect(Object.keys(created).sort()).toEqual(['account_id', 'api_key']);
  expect((await mesh.api(`/api/v1/payments/${crypto.randomUUID()}`, { key: created.api_key })).status).toBe(
    404,
  );

  const accounts = (await admin('accounts', 'list')) as Array<{
    account_id: string;
    email: string;
    active_keys: number;
  }>;
  expect(accounts).toContainEqual(
    expect.objectContaining({ account_id: created.account_id, email, active_keys: 1 }),
  );

  const second = (await admin('keys', 'create', '--account', created.account_id)) as {
    api_key: string;
    prefix: string;
  };
  expect(second.api_key.startsWith(`${second.prefix}_`)).toBe(true);
  expect(await admin('keys', 'revoke', second.prefix)).toEqual({ prefix: second.prefix, revoked: true });

  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'plans-')), 'plans.json');
  fs.writeFileSync(
    file,
    JSON.stringify([
      {
        id: 'pro_init',
        name: 'Pro',
        price: 2900,
        currency: 'usd',
        images: 300,
        is_init: true,
        max_images: 40,
      },
    ]),
  );
  expect(await admin('plans', 'upsert', file)).toEqual([
    expect.objectContaining({ id: 'pro_init', price: 2900, images: 300, min_images: 5, max_images: 40 }),
  ]);
  const plans = (await admin('plans', 'list')) as Array<{ id: string }>;
  expect(plans.map((p) => p.id)).toEqual(
    expect.arrayContaining(['basic_init', 'basic_extra_creds', 'pro_init']),
  );

  // Nothing paid yet: the report for this account has no revenue.
  const report = (await admin('usage', '--account', created.account_id)) as {
    lines: Array<{ revenue: number }>;
  };
  expect(report.lines.reduce((sum, l) => sum + l.revenue, 0)).toBe(0);
});

it('exits non-zero with a message for a bad command or an unknown account', async () => {
  await expect(admin('accounts', 'explode')).rejects.toMatchObject({
    code: 1,
    stderr: expect.stringMatching(/usage/),
  });
  await expect(admin('keys', 'create', '--account', crypto.randomUUID())).rejects.toMatchObject({
    code: 1,
    stderr: expect.stringMatching(/not found/),
  });
});

it('accounts delete records the deletion of an account with trainer (the job does the rest)', async () => {
  const { accountId } = await mesh.createAccount();
  expect(await admin('accounts', 'delete', accountId)).toEqual({
    account_id: accountId,
    status: 'deleting',
    versions: 0,
  });
  const ws = (mesh.trainer as unknown as { jobs: { accountDeletion: { claim(): Promise<unknown[]> } } }).jobs;
  expect(await ws.accountDeletion.claim()).toEqual([expect.objectContaining({ id: accountId })]);
  await expect(admin('accounts', 'delete', crypto.randomUUID())).rejects.toMatchObject({
    code: 1,
    stderr: expect.stringMatching(/not found/),
  });
});
