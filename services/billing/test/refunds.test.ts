/**
 * Refunds (`charge.refunded`) made in the Stripe sandbox and delivered as signed webhooks through
 * the gateway: the payment becomes refunded and only the unused part of its grant is taken back.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { trainedVersion, waitFor, type Mesh } from '@atelier/infra/testing';
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

beforeAll(async () => {
  ({ mesh, db, account } = await startBillingSuite());
});
afterAll(() => stopBillingSuite({ mesh, db }));

const intentOf = (checkoutUrl: string) =>
  mesh.stripe.session(sessionIdOf(checkoutUrl))!.payment_intent as string;
const refundEvents = (intent: string) =>
  mesh.stripe
    .events()
    .filter(
      (e) =>
        e.type === 'charge.refunded' &&
        (e.data.object as { payment_intent?: string }).payment_intent === intent,
    );

async function grantRow(paymentId: string) {
  const { rows } = await db.query<{ amount: number; revoked: number }>(
    'SELECT amount, revoked FROM billing.credit_grants WHERE payment_id = $1',
    [paymentId],
  );
  return rows[0];
}

describe('refunds', () => {
  it('revoke only the unused part of the grant; reserved credits are taken back as they are released', async () => {
    const { versionId, initPaymentId, initCheckoutUrl } = await trainedVersion(mesh, account);
    const spent = randomUUID();
    await billing().reserveCredits({
      accountId: account.accountId,
      versionId,
      reservationId: spent,
      amount: 30,
    });
    await billing().settleCredits({ reservationId: spent, used: 30 });
    const held = randomUUID();
    await billing().reserveCredits({
      accountId: account.accountId,
      versionId,
      reservationId: held,
      amount: 20,
    });
    expect(await balanceRow(db, versionId)).toEqual({ granted: 100, used: 50 });

    await mesh.stripe.refund(intentOf(initCheckoutUrl));
    await waitForStatus(mesh, account.apiKey, initPaymentId, 'refunded');

    // 30 used and 20 reserved stay; the 50 unused are revoked.
    expect(await balanceRow(db, versionId)).toEqual({ granted: 50, used: 50 });
    expect(await grantRow(initPaymentId)).toEqual({ amount: 100, revoked: 50 });
    expect((await ledger(db, versionId)).at(-1)).toEqual({
      reason: 'revoke',
      granted_delta: -50,
      used_delta: 0,
      payment_id: initPaymentId,
      reservation_id: null,
    });

    // Redelivering the refund changes nothing.
    const [event] = refundEvents(intentOf(initCheckoutUrl));
    for (let i = 0; i < 3; i++) expect((await mesh.stripe.sendEvent(event!)).status).toBe(200);
    expect(await balanceRow(db, versionId)).toEqual({ granted: 50, used: 50 });

    // The prompt holding 20 produced 5 images: the 15 that come back belong to a refunded payment.
    const settled = await billing().settleCredits({ reservationId: held, used: 5 });
    expect(settled.balance).toEqual({ versionId, granted: 35, used: 35, remaining: 0 });
    expect(await grantRow(initPaymentId)).toEqual({ amount: 100, revoked: 65 });
    await expectLedgerMatchesBalance(db, versionId);
  });

  it('revokes nothing already used: a fully spent grant stays spent, and the payment is refunded', async () => {
    const { versionId, initPaymentId, initCheckoutUrl } = await trainedVersion(mesh, account);
    const r = randomUUID();
    await billing().reserveCredits({
      accountId: account.accountId,
      versionId,
      reservationId: r,
      amount: 100,
    });
    await billing().settleCredits({ reservationId: r, used: 100 });
    await mesh.stripe.refund(intentOf(initCheckoutUrl));
    await waitForStatus(mesh, account.apiKey, initPaymentId, 'refunded');
    expect(await balanceRow(db, versionId)).toEqual({ granted: 100, used: 100 });
    expect(await grantRow(initPaymentId)).toEqual({ amount: 100, revoked: 0 });
    await expectLedgerMatchesBalance(db, versionId);
  });

  it('a partial refund leaves the payment paid and its credits alone; refunding the rest refunds it', async () => {
    const { versionId, initPaymentId, initCheckoutUrl } = await trainedVersion(mesh, account);
    const intent = intentOf(initCheckoutUrl);
    await mesh.stripe.refund(intent, 300);
    await waitFor(() => refundEvents(intent)[0]?.pending_webhooks === 0, {
      what: 'partial refund delivered',
    });
    expect(await paymentStatus(mesh, account.apiKey, initPaymentId)).toBe('paid');
    expect(await balanceRow(db, versionId)).toEqual({ granted: 100, used: 0 });

    await mesh.stripe.refund(intent);
    await waitForStatus(mesh, account.apiKey, initPaymentId, 'refunded');
    expect(await balanceRow(db, versionId)).toEqual({ granted: 0, used: 0 });
    await expectLedgerMatchesBalance(db, versionId);
  });

  it('a refund that overtakes the payment event still ends refunded; the late payment event changes nothing', async () => {
    const payment = await createPayment(mesh, account.apiKey, { plan_id: 'basic_init' });
    mesh.stripe.setWebhookUrl(null);
    let completed, refunded;
    try {
      await checkout(payment.checkout_url);
      await mesh.stripe.refund(intentOf(payment.checkout_url));
      completed = mesh.stripe
        .events()
        .find(
          (e) =>
            e.type === 'checkout.session.completed' &&
            (e.data.object as { id: string }).id === sessionIdOf(payment.checkout_url),
        )!;
      refunded = refundEvents(intentOf(payment.checkout_url))[0]!;
    } finally {
      mesh.stripe.setWebhookUrl(`${mesh.gateway.url}/api/v1/payments/webhook`);
    }
    expect((await mesh.stripe.sendEvent(refunded)).status).toBe(200);
    expect(await paymentStatus(mesh, account.apiKey, payment.payment_id)).toBe('refunded');
    expect((await mesh.stripe.sendEvent(completed)).status).toBe(200);
    expect(await paymentStatus(mesh, account.apiKey, payment.payment_id)).toBe('refunded');
    // A refunded init payment can train nothing and grant nothing.
    const claim = billing().claimInitPayment({
      accountId: account.accountId,
      paymentId: payment.payment_id,
      versionId: randomUUID(),
    });
    await expect(claim).rejects.toMatchObject({ code: 'payment_not_paid' });
  });
});
