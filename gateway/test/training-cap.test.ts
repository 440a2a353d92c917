/**
 * The tier's cap on trainings running at once, through the real mesh: trainer enforces it with the
 * limit the gateway read from the key's tier. Trainings run "forever" (trainingMs: 10 min), so
 * every started one counts until the test cancels it.
 */
import { Client } from 'pg';
import { distinctPhotos, paidInitPayment, photoForm, startMesh, type Mesh } from '@atelier/infra/testing';

let mesh: Mesh;
let db: Client;
let photos: Awaited<ReturnType<typeof distinctPhotos>>;

beforeAll(async () => {
  mesh = await startMesh({
    replicate: { trainingMs: 600_000 },
    env: {
      // The documented standard tier (the test mesh lifts the cap for files that share an account).
      TIER_LIMITS: JSON.stringify({ standard: { trainingsRunning: 2 } }),
      RATE_LIMIT_PER_WINDOW: '10000',
    },
  });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  photos = await distinctPhotos(5);
});
afterAll(async () => {
  await db?.end();
  await mesh?.stop();
});

type Account = Awaited<ReturnType<Mesh['createAccount']>>;

const upload = (account: Account, paymentId: string) =>
  mesh.api(`/api/v1/versions/train/${paymentId}`, {
    key: account.apiKey,
    method: 'POST',
    body: photoForm(photos),
  });

async function paymentOf(account: Account, paymentId: string) {
  const res = await mesh.api(`/api/v1/payments/${paymentId}`, { key: account.apiKey });
  return (await res.json()) as { status: string; version_id: string | null };
}

async function running(accountId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM trainer.versions WHERE account_id = $1 AND status IN ('starting', 'processing')`,
    [accountId],
  );
  return rows[0]!.n;
}

describe('trainings running at once', () => {
  it('a standard key trains two at once; the third is refused with 429 naming the limit, its payment kept for later', async () => {
    const account = await mesh.createAccount();
    const payments = [];
    for (let i = 0; i < 3; i++) payments.push(await paidInitPayment(mesh, account));

    for (const paymentId of payments.slice(0, 2)) expect((await upload(account, paymentId)).status).toBe(202);
    expect(await running(account.accountId)).toBe(2);

    const third = await upload(account, payments[2]!);
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const problem = (await third.json()) as { limit: string; max: number; detail: string };
    expect(problem).toMatchObject({ limit: 'trainings_running', max: 2 });
    expect(problem.detail).toMatch(/2 trainings are already running/);
    // Refused before the claim: the payment is still paid and bound to nothing.
    expect(await paymentOf(account, payments[2]!)).toMatchObject({ status: 'paid', version_id: null });

    // One ends: the refused payment trains now.
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM trainer.versions WHERE account_id = $1 ORDER BY created_at LIMIT 1`,
      [account.accountId],
    );
    const canceled = await mesh.api(`/api/v1/versions/${rows[0]!.id}/cancel`, {
      key: account.apiKey,
      method: 'POST',
    });
    expect(canceled.status).toBe(200);
    expect((await upload(account, payments[2]!)).status).toBe(202);
    expect(await running(account.accountId)).toBe(2);
  });

  it('concurrent uploads never pass the cap; each refused one gives its payment back', async () => {
    const account = await mesh.createAccount();
    const payments = [];
    for (let i = 0; i < 4; i++) payments.push(await paidInitPayment(mesh, account));

    const answers = await Promise.all(payments.map((p) => upload(account, p)));
    const started = answers.filter((r) => r.status === 202).length;
    for (const res of answers.filter((r) => r.status !== 202)) {
      expect(res.status).toBe(429);
      expect((await res.json()) as { limit: string }).toMatchObject({ limit: 'trainings_running' });
    }
    expect(started).toBeLessThanOrEqual(2);
    expect(await running(account.accountId)).toBe(started);
    // A refused upload (early or after its photos) leaves its payment paid and unbound.
    const states = await Promise.all(payments.map((p) => paymentOf(account, p)));
    expect(states.filter((s) => s.status === 'paid' && s.version_id === null)).toHaveLength(4 - started);
  });
});
