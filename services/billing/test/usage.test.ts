/** RecordUsage and GetUsageReport: cost recorded once per run, revenue from paid payments only. */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { startMesh, type Mesh } from '@atelier/infra/testing';
import { checkout, createPayment, paidPayment, sessionIdOf, waitForStatus } from './helpers';

let mesh: Mesh;
let db: Client;
const billing = () => mesh.gateway.deps.mesh.billing;

beforeAll(async () => {
  mesh = await startMesh({ env: { RATE_LIMIT_PER_WINDOW: '10000' } });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await mesh?.stop();
});

describe('usage and revenue', () => {
  it('records each training or prediction once and reports revenue of paid payments against cost, per account', async () => {
    const start = new Date(Date.now() - 1000);
    const a = await mesh.createAccount();
    const b = await mesh.createAccount();
    await paidPayment(mesh, a.apiKey);
    await paidPayment(mesh, a.apiKey, { plan_id: 'basic_init', promocode_id: 'promo_sandbox_active10' });
    const refunded = await paidPayment(mesh, a.apiKey);
    await mesh.stripe.refund(
      mesh.stripe.session(sessionIdOf(refunded.checkout_url))!.payment_intent as string,
    );
    await waitForStatus(mesh, a.apiKey, refunded.payment_id, 'refunded');
    const unpaid = await createPayment(mesh, a.apiKey, { plan_id: 'basic_init' });
    await checkout(unpaid.checkout_url, 'fail');

    const training = randomUUID();
    expect(
      await billing().recordUsage({
        accountId: a.accountId,
        kind: 'training',
        refId: training,
        versionId: training,
        predictSeconds: 120.5,
        costMicros: 250_000,
      }),
    ).toEqual({ recorded: true });
    expect(
      await billing().recordUsage({
        accountId: a.accountId,
        kind: 'training',
        refId: training,
        versionId: training,
        predictSeconds: 999,
        costMicros: 999,
      }),
    ).toEqual({ recorded: false });
    await billing().recordUsage({
      accountId: a.accountId,
      kind: 'prediction',
      refId: randomUUID(),
      versionId: randomUUID(),
      predictSeconds: 2,
      costMicros: 4_000,
    });
    await billing().recordUsage({
      accountId: b.accountId,
      kind: 'prediction',
      refId: randomUUID(),
      versionId: randomUUID(),
      predictSeconds: 1.5,
      costMicros: 3_000,
    });

    const { lines } = await billing().getUsageReport({ from: start, to: new Date(Date.now() + 60_000) });
    const byAccount = Object.fromEntries(lines.map((l) => [l.accountId, l]));
    expect(byAccount[a.accountId]).toEqual({
      accountId: a.accountId,
      currency: 'usd',
      revenue: 1300 + 1170,
      payments: 2,
      predictSeconds: 122.5,
      costMicros: 254_000,
    });
    expect(byAccount[b.accountId]).toEqual({
      accountId: b.accountId,
      currency: 'usd',
      revenue: 0,
      payments: 0,
      predictSeconds: 1.5,
      costMicros: 3_000,
    });

    const one = await billing().getUsageReport({ accountId: b.accountId });
    expect(one.lines).toHaveLength(1);
    const before = await billing().getUsageReport({ to: start });
    expect(before.lines.find((l) => l.accountId === a.accountId)).toBeUndefined();
  });

  it('refuses an unknown kind (400) and an unknown account (404)', async () => {
    const a = await mesh.createAccount();
    await expect(
      billing().recordUsage({
        accountId: a.accountId,
        kind: 'upload',
        refId: randomUUID(),
        versionId: randomUUID(),
        predictSeconds: 1,
        costMicros: 1,
      }),
    ).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(
      billing().recordUsage({
        accountId: randomUUID(),
        kind: 'prediction',
        refId: randomUUID(),
        versionId: randomUUID(),
        predictSeconds: 1,
        costMicros: 1,
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
  });
});
