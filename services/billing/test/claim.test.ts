/** ClaimInitPayment / ReleaseInitPayment: an init payment trains exactly one version. */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { billing as proto } from '@atelier/protos';
import type { Mesh } from '@atelier/infra/testing';
import {
  checkout,
  createPayment,
  paidPayment,
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

describe('ClaimInitPayment', () => {
  it('binds a paid init payment to one version: 20 concurrent claims for different versions, one wins', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const versions = Array.from({ length: 20 }, () => randomUUID());
    const results = await Promise.allSettled(
      versions.map((versionId) =>
        billing().claimInitPayment({
          accountId: account.accountId,
          paymentId: payment.payment_id,
          versionId,
        }),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [versions[i]] : []));
    expect(won).toHaveLength(1);
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'payment_already_used' });

    const winner = (
      results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<proto.ClaimInitPaymentResponse>
    ).value;
    expect(winner.payment).toMatchObject({
      paymentId: payment.payment_id,
      versionId: won[0],
      status: proto.PaymentStatus.PAYMENT_STATUS_PAID,
      isInit: true,
    });
    expect(winner.plan).toMatchObject({ id: 'basic_init', images: 100, minImages: 5, maxImages: 30 });
    // The same claim again (a retry after a lost answer) is not "already used".
    await expect(
      billing().claimInitPayment({
        accountId: account.accountId,
        paymentId: payment.payment_id,
        versionId: won[0]!,
      }),
    ).resolves.toBeDefined();
    const res = await mesh.api(`/api/v1/payments/${payment.payment_id}`, { key: account.apiKey });
    expect(((await res.json()) as { version_id: string }).version_id).toBe(won[0]);
  });

  it('answers 404 for an unknown or foreign payment, 402 for an unpaid one', async () => {
    const other = await mesh.createAccount();
    const payment = await paidPayment(mesh, account.apiKey);
    await expect(
      billing().claimInitPayment({
        accountId: other.accountId,
        paymentId: payment.payment_id,
        versionId: randomUUID(),
      }),
    ).rejects.toMatchObject({ code: 'not_found' });
    await expect(
      billing().claimInitPayment({
        accountId: account.accountId,
        paymentId: randomUUID(),
        versionId: randomUUID(),
      }),
    ).rejects.toMatchObject({ code: 'not_found' });

    const pending = await createPayment(mesh, account.apiKey, { plan_id: 'basic_init' });
    await expect(
      billing().claimInitPayment({
        accountId: account.accountId,
        paymentId: pending.payment_id,
        versionId: randomUUID(),
      }),
    ).rejects.toMatchObject({ code: 'payment_not_paid' });
    const failed = await createPayment(mesh, account.apiKey, { plan_id: 'basic_init' });
    await checkout(failed.checkout_url, 'fail');
    await waitForStatus(mesh, account.apiKey, failed.payment_id, 'failed');
    await expect(
      billing().claimInitPayment({
        accountId: account.accountId,
        paymentId: failed.payment_id,
        versionId: randomUUID(),
      }),
    ).rejects.toMatchObject({ code: 'payment_not_paid' });
  });

  it('answers 402 for an unpaid init payment at the train route too (the gateway asks billing first)', async () => {
    const pending = await createPayment(mesh, account.apiKey, { plan_id: 'basic_init' });
    const res = await mesh.api(`/api/v1/versions/train/${pending.payment_id}`, {
      key: account.apiKey,
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body: '--x--\r\n',
    });
    expect(res.status).toBe(402);
  });

  it('refuses a version already trained by another payment (409)', async () => {
    const first = await paidPayment(mesh, account.apiKey);
    const second = await paidPayment(mesh, account.apiKey);
    const versionId = randomUUID();
    await billing().claimInitPayment({
      accountId: account.accountId,
      paymentId: first.payment_id,
      versionId,
    });
    await expect(
      billing().claimInitPayment({ accountId: account.accountId, paymentId: second.payment_id, versionId }),
    ).rejects.toMatchObject({ code: 'version_already_trained' });
  });
});

describe('ReleaseInitPayment', () => {
  it('releases only the claim of that version, and only before it was granted credits', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const [a, b] = [randomUUID(), randomUUID()];
    await billing().claimInitPayment({
      accountId: account.accountId,
      paymentId: payment.payment_id,
      versionId: a,
    });
    expect(await billing().releaseInitPayment({ paymentId: payment.payment_id, versionId: b })).toEqual({
      released: false,
    });
    expect(await billing().releaseInitPayment({ paymentId: payment.payment_id, versionId: a })).toEqual({
      released: true,
    });
    expect(await billing().releaseInitPayment({ paymentId: payment.payment_id, versionId: a })).toEqual({
      released: false,
    });

    // Free again: another attempt can claim it, be reported ready (granted), and then can no longer be released.
    await billing().claimInitPayment({
      accountId: account.accountId,
      paymentId: payment.payment_id,
      versionId: b,
    });
    await billing().reportTrainingOutcome({
      accountId: account.accountId,
      paymentId: payment.payment_id,
      versionId: b,
      outcome: proto.TrainingOutcome.TRAINING_OUTCOME_READY,
    });
    expect(await billing().releaseInitPayment({ paymentId: payment.payment_id, versionId: b })).toEqual({
      released: false,
    });
  });
});
