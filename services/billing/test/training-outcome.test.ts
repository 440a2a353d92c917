/**
 * What a training's outcome means for its init payment, decided by billing alone: credits as
 * bought once the version is ready, the payment given back when it never will be, and a refunded
 * payment's training told to stop. Through the real gateway, billing and Stripe sandbox.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { Mesh } from '@atelier/infra/testing';
import { billing as billingProto } from '@atelier/protos';
import {
  balanceRow,
  createPayment,
  checkout,
  expectLedgerMatchesBalance,
  ledger,
  paidPayment,
  sessionIdOf,
  startBillingSuite,
  stopBillingSuite,
  waitForStatus,
} from './helpers';

const { TrainingOutcome, PaymentStatus } = billingProto;

let mesh: Mesh;
let db: Client;
let account: { accountId: string; apiKey: string };
const billing = () => mesh.gateway.deps.mesh.billing;

beforeAll(async () => {
  ({ mesh, db, account } = await startBillingSuite());
});
afterAll(() => stopBillingSuite({ mesh, db }));

const report = (paymentId: string, versionId: string, outcome: billingProto.TrainingOutcome) =>
  billing().reportTrainingOutcome({ accountId: account.accountId, paymentId, versionId, outcome });

const readyAt = async (versionId: string) =>
  (
    await db.query<{ ready_at: Date | null }>(
      'SELECT ready_at FROM billing.trained_versions WHERE version_id = $1',
      [versionId],
    )
  ).rows[0]?.ready_at;

async function claim(paymentId: string, versionId = randomUUID()) {
  const { plan } = await billing().claimInitPayment({ accountId: account.accountId, paymentId, versionId });
  return { versionId, plan: plan! };
}

describe('ReportTrainingOutcome', () => {
  it('grants nothing while the training runs, and the credits as bought once it is ready, once however often it is reported', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const { versionId } = await claim(payment.payment_id);
    const running = await report(payment.payment_id, versionId, TrainingOutcome.TRAINING_OUTCOME_RUNNING);
    expect(running).toMatchObject({
      paymentStatus: PaymentStatus.PAYMENT_STATUS_PAID,
      keepTraining: true,
      balance: { granted: 0, used: 0, remaining: 0 },
    });
    expect(await readyAt(versionId)).toBeNull();
    // Trainer's reconciler and a webhook may report the same ready version at once.
    const concurrent = await Promise.all(
      Array.from({ length: 3 }, () =>
        report(payment.payment_id, versionId, TrainingOutcome.TRAINING_OUTCOME_READY),
      ),
    );
    const again = await report(payment.payment_id, versionId, TrainingOutcome.TRAINING_OUTCOME_READY);
    for (const ready of [...concurrent, again])
      expect(ready).toMatchObject({
        keepTraining: true,
        balance: { versionId, granted: 100, used: 0, remaining: 100 },
      });
    expect(await ledger(db, versionId)).toEqual([
      {
        reason: 'grant',
        granted_delta: 100,
        used_delta: 0,
        payment_id: payment.payment_id,
        reservation_id: null,
      },
    ]);
    await expectLedgerMatchesBalance(db, versionId);
    // The version is ready for billing too: add-ons can be bought for it.
    expect(await readyAt(versionId)).toBeInstanceOf(Date);
  });

  it('grants nothing for a version the payment does not pay for, and says to stop it', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const { versionId } = await claim(payment.payment_id);
    const stranger = randomUUID();
    const ready = await report(payment.payment_id, stranger, TrainingOutcome.TRAINING_OUTCOME_READY);
    expect(ready).toMatchObject({ keepTraining: false, balance: { versionId: stranger, granted: 0 } });
    expect(await balanceRow(db, stranger)).toBeUndefined();
    expect(await balanceRow(db, versionId)).toBeUndefined();
  });

  it('gives the payment back when the training will never be ready: it trains again, and the failed version has no credits', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const first = await claim(payment.payment_id);
    const failed = await report(payment.payment_id, first.versionId, TrainingOutcome.TRAINING_OUTCOME_FAILED);
    expect(failed.balance).toMatchObject({ granted: 0, remaining: 0 });
    const after = await billing().getPayment({ accountId: account.accountId, paymentId: payment.payment_id });
    expect(after.payment).toMatchObject({ status: PaymentStatus.PAYMENT_STATUS_PAID, versionId: undefined });
    // A late READY for the failed version grants nothing: the payment no longer pays for it.
    const late = await report(payment.payment_id, first.versionId, TrainingOutcome.TRAINING_OUTCOME_READY);
    expect(late).toMatchObject({ keepTraining: false, balance: { granted: 0 } });

    const second = await claim(payment.payment_id);
    const ready = await report(payment.payment_id, second.versionId, TrainingOutcome.TRAINING_OUTCOME_READY);
    expect(ready.balance).toMatchObject({ granted: 100, remaining: 100 });
    expect(await balanceRow(db, first.versionId)).toBeUndefined();
  });

  it("tells a refunded payment's training to stop, and does not give a refunded payment back", async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const { versionId } = await claim(payment.payment_id);
    const intent = mesh.stripe.session(sessionIdOf(payment.checkout_url))!.payment_intent as string;
    await mesh.stripe.refund(intent);
    await waitForStatus(mesh, account.apiKey, payment.payment_id, 'refunded');
    const running = await report(payment.payment_id, versionId, TrainingOutcome.TRAINING_OUTCOME_RUNNING);
    expect(running).toMatchObject({
      paymentStatus: PaymentStatus.PAYMENT_STATUS_REFUNDED,
      keepTraining: false,
    });
    await report(payment.payment_id, versionId, TrainingOutcome.TRAINING_OUTCOME_FAILED);
    const after = await billing().getPayment({ accountId: account.accountId, paymentId: payment.payment_id });
    expect(after.payment).toMatchObject({ status: PaymentStatus.PAYMENT_STATUS_REFUNDED, versionId });
  });

  it("answers 404 for another account's payment", async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const { versionId } = await claim(payment.payment_id);
    const other = await mesh.createAccount();
    await expect(
      billing().reportTrainingOutcome({
        accountId: other.accountId,
        paymentId: payment.payment_id,
        versionId,
        outcome: TrainingOutcome.TRAINING_OUTCOME_READY,
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe('a payment keeps the plan as it was bought', () => {
  it('claims with the photo limits and grants the images it was bought with, whatever the plan says now', async () => {
    const planId = `snapshot_${randomUUID().slice(0, 8)}`;
    const plan = {
      id: planId,
      name: 'Snapshot',
      description: '',
      price: 900,
      currency: 'usd',
      images: 40,
      isInit: true,
      tier: 'standard',
      minImages: 6,
      maxImages: 12,
      deprecated: false,
    };
    await billing().upsertPlan({ plan });
    const created = await createPayment(mesh, account.apiKey, { plan_id: planId });
    // Edited after the purchase: more images, other limits, another price.
    await billing().upsertPlan({ plan: { ...plan, images: 400, minImages: 2, maxImages: 20, price: 100 } });
    await checkout(created.checkout_url);
    await waitForStatus(mesh, account.apiKey, created.payment_id, 'paid');

    const { versionId, plan: bought } = await claim(created.payment_id);
    expect(bought).toMatchObject({ id: planId, images: 40, minImages: 6, maxImages: 12, price: 900 });
    const ready = await report(created.payment_id, versionId, TrainingOutcome.TRAINING_OUTCOME_READY);
    expect(ready.balance).toMatchObject({ granted: 40, remaining: 40 });
    expect(created.amount).toBe(900);
  });
});
