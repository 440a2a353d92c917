/**
 * Listing what is mine: GET /api/v1/versions, /api/v1/payments and /api/v1/account through the
 * gateway and the mesh. Pages are keyset pages; another account's rows never show.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { insertVersionRow, startMesh, trainedVersion, type Mesh } from '@atelier/infra/testing';

let mesh: Mesh;
let db: Client;

beforeAll(async () => {
  mesh = await startMesh({ env: { RATE_LIMIT_PER_WINDOW: '100000' } });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await mesh?.stop();
});

/** Trainer's row written directly (a whole training per row would only slow this file down). */
async function insertVersion(accountId: string, status: string, createdAt: string): Promise<string> {
  const id = randomUUID();
  await insertVersionRow(db, {
    id,
    account_id: accountId,
    payment_id: randomUUID(),
    status,
    class_name: 'man',
    dataset_key: 'k',
    created_at: createdAt,
    settled_at: new Date(),
  });
  return id;
}

async function getJson<T>(path: string, key: string): Promise<{ status: number; body: T }> {
  const res = await mesh.api(path, { key });
  return { status: res.status, body: (await res.json()) as T };
}

type VersionPage = {
  versions: Array<{ version_id: string; status: string; images: { granted: number } }>;
  next_cursor: string | null;
};

it('lists my versions newest first in keyset pages, filters by status, and never shows another account', async () => {
  const me = await mesh.createAccount();
  const other = await mesh.createAccount();
  // Two rows share a created_at: the id breaks the tie, so paging neither skips nor repeats.
  const ids = [
    await insertVersion(me.accountId, 'succeeded', '2026-01-01T00:00:00.000001Z'),
    await insertVersion(me.accountId, 'failed', '2026-01-02T00:00:00Z'),
    await insertVersion(me.accountId, 'succeeded', '2026-01-02T00:00:00Z'),
    await insertVersion(me.accountId, 'processing', '2026-01-03T00:00:00Z'),
  ];
  await insertVersion(other.accountId, 'succeeded', '2026-01-04T00:00:00Z');

  const seen: string[] = [];
  let cursor: string | null = '';
  let pages = 0;
  do {
    const page: { status: number; body: VersionPage } = await getJson<VersionPage>(
      `/api/v1/versions?limit=3${cursor ? `&cursor=${cursor}` : ''}`,
      me.apiKey,
    );
    expect(page.status).toBe(200);
    seen.push(...page.body.versions.map((v) => v.version_id));
    cursor = page.body.next_cursor;
    pages++;
  } while (cursor && pages < 5);
  expect(pages).toBe(2);
  const tied = [ids[1]!, ids[2]!].sort().reverse();
  expect(seen).toEqual([ids[3], ...tied, ids[0]]);

  const succeeded = await getJson<VersionPage>('/api/v1/versions?status=succeeded', me.apiKey);
  expect(succeeded.body.versions.map((v) => v.version_id).sort()).toEqual([ids[0], ids[2]].sort());
  expect(succeeded.body.next_cursor).toBeNull();
  expect(succeeded.body.versions[0]!.images.granted).toBe(0);

  const theirs = await getJson<VersionPage>('/api/v1/versions', other.apiKey);
  expect(theirs.body.versions).toHaveLength(1);
  expect(ids).not.toContain(theirs.body.versions[0]!.version_id);
});

it('a cursor it did not hand out, a bad status or limit is a 400', async () => {
  const me = await mesh.createAccount();
  for (const q of ['cursor=garbage', 'cursor=WyJ4IiwieSJd', 'status=ready', 'limit=0', 'limit=101']) {
    const versions = await mesh.api(`/api/v1/versions?${q}`, { key: me.apiKey });
    expect([q, versions.status]).toEqual([q, 400]);
  }
  const payments = await mesh.api('/api/v1/payments?cursor=garbage', { key: me.apiKey });
  expect(payments.status).toBe(400);
  expect(payments.headers.get('content-type')).toMatch(/problem\+json/);
});

it('lists my payments newest first in pages; my account shows credits summed over versions', async () => {
  const me = await mesh.createAccount();
  const other = await mesh.createAccount();
  const created: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await mesh.api('/api/v1/payments/create', {
      key: me.apiKey,
      method: 'POST',
      json: { plan_id: 'basic_init' },
    });
    expect(res.status).toBe(201);
    created.push(((await res.json()) as { payment_id: string }).payment_id);
  }
  await mesh.api('/api/v1/payments/create', {
    key: other.apiKey,
    method: 'POST',
    json: { plan_id: 'basic_init' },
  });

  type PaymentPage = { payments: Array<{ payment_id: string; status: string }>; next_cursor: string | null };
  const first = await getJson<PaymentPage>('/api/v1/payments?limit=2', me.apiKey);
  expect(first.body.payments).toHaveLength(2);
  expect(first.body.next_cursor).toEqual(expect.any(String));
  const second = await getJson<PaymentPage>(
    `/api/v1/payments?limit=2&cursor=${first.body.next_cursor}`,
    me.apiKey,
  );
  expect(second.body.next_cursor).toBeNull();
  const all = [...first.body.payments, ...second.body.payments].map((p) => p.payment_id);
  expect(all).toEqual([...created].reverse());
  const otherPage = await getJson<PaymentPage>('/api/v1/payments', other.apiKey);
  expect(otherPage.body.payments).toHaveLength(1);
  expect(created).not.toContain(otherPage.body.payments[0]!.payment_id);

  // Credits on two versions, granted as billing grants them: trainings reported ready.
  const billing = mesh.gateway.deps.mesh.billing;
  const versions: string[] = [];
  for (const credits of [7, 5]) versions.push((await trainedVersion(mesh, me, { credits })).versionId);
  await billing.reserveCredits({
    accountId: me.accountId,
    versionId: versions[0]!,
    reservationId: randomUUID(),
    amount: 3,
  });
  const account = await getJson<{
    account_id: string;
    email: string;
    tier: string;
    limits: { reads_per_minute: number };
    credits: { granted: number; used: number; remaining: number };
  }>('/api/v1/account', me.apiKey);
  expect(account.status).toBe(200);
  expect(account.body.account_id).toBe(me.accountId);
  // Its paid payment's plan sells the standard tier.
  expect(account.body.tier).toBe('standard');
  expect(account.body.limits.reads_per_minute).toBeGreaterThan(0);
  expect(account.body.credits).toEqual({ granted: 12, used: 3, remaining: 9 });
});
