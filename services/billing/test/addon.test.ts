/**
 * Add-on payments: bound at creation to a ready version of the caller (billing knows which
 * versions are ready from trainer's reports), and granting their images the moment they are paid
 * — exactly once however the webhooks arrive. The test reports the version ready, as trainer would.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { trainedVersion, type Mesh } from '@atelier/infra/testing';
import { billing as billingProto } from '@atelier/protos';
import {
  balanceRow,
  checkout,
  createPayment,
  expectLedgerMatchesBalance,
  ledger,
  paymentStatus,
  sessionIdOf,
  waitForStatus,
  startBillingSuite,
  stopBillingSuite,
} from './helpers';

let mesh: Mesh;
let db: Client;
let account: { accountId: string; apiKey: string };
const billing = () => mesh.gateway.deps.mesh.billing;
const { TrainingOutcome } = billingProto;

beforeAll(async () => {
  ({ mesh, db, account } = await startBillingSuite());
});
afterAll(() => stopBillingSuite({ mesh, db }));

const create = (body: unknown, apiKey = account.apiKey) =>
  mesh.api('/api/v1/payments/create', { key: apiKey, method: 'POST', json: body });
const eventsOf = (checkoutUrl: string, type: string) =>
  mesh.stripe
    .events()
    .filter((e) => e.type === type && (e.data.object as { id?: string }).id === sessionIdOf(checkoutUrl));

async function withoutDelivery<T>(fn: () => Promise<T>): Promise<T> {
  mesh.stripe.setWebhookUrl(null);
  try {
    return await fn();
  } finally {
    mesh.stripe.setWebhookUrl(`${mesh.gateway.url}/api/v1/payments/webhook`);
  }
}

describe('creating an add-on payment', () => {
  it('binds it to a ready version of the caller', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const res = await create({ plan_id: 'basic_extra_creds', version_id: versionId });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({
      plan_id: 'basic_extra_creds',
      version_id: versionId,
      status: 'pending',
      amount: 1300,
    });
  });

  it("answers 404 for another account's version or an unknown one, 409 for a version not ready", async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const other = await mesh.createAccount();
    expect((await create({ plan_id: 'basic_extra_creds', version_id: versionId }, other.apiKey)).status).toBe(
      404,
    );
    expect((await create({ plan_id: 'basic_extra_creds', version_id: randomUUID() })).status).toBe(404);

    // Claimed and still training: not ready.
    const training = await trainedVersion(mesh, account, { ready: false });
    expect((await create({ plan_id: 'basic_extra_creds', version_id: training.versionId })).status).toBe(409);
    // Failed: still the caller's, never ready.
    await billing().reportTrainingOutcome({
      accountId: account.accountId,
      paymentId: training.initPaymentId,
      versionId: training.versionId,
      outcome: TrainingOutcome.TRAINING_OUTCOME_FAILED,
    });
    expect((await create({ plan_id: 'basic_extra_creds', version_id: training.versionId })).status).toBe(409);
  });

  it('answers 410 for a deleted version (its credits forfeited) and opens no Checkout Session', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    // The first step of trainer's deletion job, which is how billing hears of the deletion.
    await billing().forfeitCredits({ accountId: account.accountId, versionId });
    const res = await create({ plan_id: 'basic_extra_creds', version_id: versionId });
    expect(res.status).toBe(410);
    expect(((await res.json()) as { type: string }).type).toMatch(/version-deleted$/);
    // No payment row, so no session: CreatePayment opens one only for the row it wrote.
    const { rows } = await db.query('SELECT plan_id FROM billing.payments WHERE version_id = $1', [
      versionId,
    ]);
    expect(rows).toEqual([{ plan_id: 'basic_init' }]);
  });

  it('cannot be claimed for training (409)', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const addon = await createPayment(mesh, account.apiKey, {
      plan_id: 'basic_extra_creds',
      version_id: versionId,
    });
    await checkout(addon.checkout_url);
    await waitForStatus(mesh, account.apiKey, addon.payment_id, 'paid');
    await expect(
      billing().claimInitPayment({
        accountId: account.accountId,
        paymentId: addon.payment_id,
        versionId: randomUUID(),
      }),
    ).rejects.toMatchObject({ code: 'payment_not_for_training' });
  });
});

describe('paying an add-on', () => {
  it('grants its images the moment it is paid; the same event delivered 5 more times grants nothing more', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const addon = await createPayment(mesh, account.apiKey, {
      plan_id: 'basic_extra_creds',
      version_id: versionId,
    });
    await checkout(addon.checkout_url);
    await waitForStatus(mesh, account.apiKey, addon.payment_id, 'paid');
    expect(await balanceRow(db, versionId)).toEqual({ granted: 1100, used: 0 });

    const [completed] = eventsOf(addon.checkout_url, 'checkout.session.completed');
    const again = await Promise.all(Array.from({ length: 5 }, () => mesh.stripe.sendEvent(completed!)));
    expect(again.every((d) => d.status === 200)).toBe(true);
    expect(await balanceRow(db, versionId)).toEqual({ granted: 1100, used: 0 });
    expect(
      (await ledger(db, versionId)).filter((r) => r.reason === 'grant').map((r) => r.granted_delta),
    ).toEqual([100, 1000]);
    await expectLedgerMatchesBalance(db, versionId);
  });

  it('grants once when the events arrive out of order and repeatedly', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const addon = await createPayment(mesh, account.apiKey, {
      plan_id: 'basic_extra_creds',
      version_id: versionId,
    });
    const [completed, succeeded] = await withoutDelivery(async () => {
      await checkout(addon.checkout_url, 'async');
      await mesh.stripe.settle(sessionIdOf(addon.checkout_url), 'succeed');
      return [
        eventsOf(addon.checkout_url, 'checkout.session.completed')[0]!,
        eventsOf(addon.checkout_url, 'checkout.session.async_payment_succeeded')[0]!,
      ];
    });
    // Newest first, then the older one, then both together several times.
    expect((await mesh.stripe.sendEvent(succeeded)).status).toBe(200);
    expect((await mesh.stripe.sendEvent(completed)).status).toBe(200);
    await Promise.all(
      [completed, succeeded, completed, succeeded, completed].map((e) => mesh.stripe.sendEvent(e)),
    );
    expect(await paymentStatus(mesh, account.apiKey, addon.payment_id)).toBe('paid');
    expect(await balanceRow(db, versionId)).toEqual({ granted: 1100, used: 0 });
    await expectLedgerMatchesBalance(db, versionId);
  });

  it('a failed or expired add-on grants nothing', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const failed = await createPayment(mesh, account.apiKey, {
      plan_id: 'basic_extra_creds',
      version_id: versionId,
    });
    await checkout(failed.checkout_url, 'fail');
    await waitForStatus(mesh, account.apiKey, failed.payment_id, 'failed');
    const expired = await createPayment(mesh, account.apiKey, {
      plan_id: 'basic_extra_creds',
      version_id: versionId,
    });
    await mesh.stripe.expire(sessionIdOf(expired.checkout_url));
    await waitForStatus(mesh, account.apiKey, expired.payment_id, 'expired');
    expect(await balanceRow(db, versionId)).toEqual({ granted: 100, used: 0 });
  });

  it('a refund of a partly used add-on revokes only what is left of it', async () => {
    const { versionId } = await trainedVersion(mesh, account);
    const addon = await createPayment(mesh, account.apiKey, {
      plan_id: 'basic_extra_creds',
      version_id: versionId,
    });
    await checkout(addon.checkout_url);
    await waitForStatus(mesh, account.apiKey, addon.payment_id, 'paid');
    const r = randomUUID();
    await billing().reserveCredits({
      accountId: account.accountId,
      versionId,
      reservationId: r,
      amount: 600,
    });
    await billing().settleCredits({ reservationId: r, used: 600 });
    expect(await balanceRow(db, versionId)).toEqual({ granted: 1100, used: 600 });

    await mesh.stripe.refund(mesh.stripe.session(sessionIdOf(addon.checkout_url))!.payment_intent as string);
    await waitForStatus(mesh, account.apiKey, addon.payment_id, 'refunded');
    // 500 remained of 1100; all of it can go, since this grant (1000) still had that much left.
    expect(await balanceRow(db, versionId)).toEqual({ granted: 600, used: 600 });
    await expectLedgerMatchesBalance(db, versionId);
  });
});
