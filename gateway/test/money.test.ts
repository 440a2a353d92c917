/**
 * Money past 32 bits, end to end: micro-unit costs and minor-unit revenue travel between the
 * services as int64. A prediction priced at 10¹³ micros a second (so its cost passes 10¹² micros)
 * runs through the gateway; inferencer records its cost with billing over gRPC, and billing's usage
 * report gives back exactly that cost, and revenue of three payments of 10¹⁰ minor units each.
 * With uint32 on the wire inferencer could not even answer for such a prompt ("Request message
 * serialization failure: invalid uint32: 3840000000000", the prompt's GET a 500) and trainer
 * clamped a training's cost at 2³² − 1. The plan's price and the payments' amounts are bigint
 * columns (V62): with integer ones the plan's upsert failed ("value "10000000000" is out of
 * range for type integer") and the same test topped out at 2·10⁹.
 */
import { startMesh, waitFor, readyVersion, type Mesh } from '@atelier/infra/testing';
import { sandboxModelVersion } from '../../services/inferencer/test/support/sandbox-version';

const PRICE_PER_SECOND_MICROS = 10 ** 13;
const BIG_PRICE = 10_000_000_000; // minor units, beyond 2³¹ (billing.plans.price and payments.amount are bigint)
let mesh: Mesh;

beforeAll(async () => {
  mesh = await startMesh({
    env: {
      PREDICTION_PRICE_PER_SECOND_MICROS: String(PRICE_PER_SECOND_MICROS),
      PREDICTION_CHECK_INTERVAL_MS: '300',
      RATE_LIMIT_PER_WINDOW: '100000',
    },
    replicate: { predictionMs: 200 },
  });
});
afterAll(() => mesh?.stop());

async function payBigPlan(apiKey: string): Promise<void> {
  const created = await mesh.api('/api/v1/payments/create', {
    key: apiKey,
    method: 'POST',
    json: { plan_id: 'test_big_price' },
  });
  expect(created.status).toBe(201);
  const payment = (await created.json()) as { payment_id: string; checkout_url: string };
  expect(payment).toMatchObject({ amount: BIG_PRICE });
  const paid = await fetch(payment.checkout_url, { method: 'POST', headers: { accept: 'application/json' } });
  expect(paid.status).toBe(200);
  await waitFor(
    async () =>
      (
        (await (await mesh.api(`/api/v1/payments/${payment.payment_id}`, { key: apiKey })).json()) as {
          status: string;
        }
      ).status === 'paid',
    { what: 'the payment to be paid' },
  );
}

describe('int64 money on the wire', () => {
  it('reports a cost above 10¹² micros and revenue above 2³² minor units exactly', async () => {
    const billing = mesh.gateway.deps.mesh.billing;
    const account = await mesh.createAccount();
    const model = await sandboxModelVersion(mesh.replicate);
    const versionId = await readyVersion(mesh, account, 1, model);
    await billing.upsertPlan({
      plan: {
        id: 'test_big_price',
        name: 'Big',
        description: '',
        price: BIG_PRICE,
        currency: 'usd',
        images: 1,
        isInit: true,
        minImages: 5,
        maxImages: 30,
        deprecated: false,
        tier: 'standard',
      },
    });
    const plans = (await (await mesh.api('/api/v1/plans')).json()) as {
      plans: Array<{ id: string; price: number }>;
    };
    expect(plans.plans.find((p) => p.id === 'test_big_price')?.price).toBe(BIG_PRICE);
    for (let i = 0; i < 3; i++) await payBigPlan(account.apiKey);
    const listed = (await (await mesh.api('/api/v1/payments', { key: account.apiKey })).json()) as {
      payments: Array<{ plan_id: string; amount: number; status: string }>;
    };
    const big = listed.payments.filter((p) => p.plan_id === 'test_big_price');
    expect(big.map((p) => [p.amount, p.status])).toEqual(Array(3).fill([BIG_PRICE, 'paid']));

    const created = await mesh.api(`/api/v1/prompts/create/${versionId}`, {
      key: account.apiKey,
      method: 'POST',
      json: { prompt: 'a photo of TOK dog', num_outputs: 1 },
    });
    expect([200, 202]).toContain(created.status);
    const { prompt_id: promptId } = (await created.json()) as { prompt_id: string };
    await waitFor(
      async () =>
        (
          (await (await mesh.api(`/api/v1/prompts/${promptId}`, { key: account.apiKey })).json()) as {
            status: string;
          }
        ).status === 'succeeded',
      { what: 'the prompt to succeed', timeoutMs: 30_000 },
    );
    const { prompt } = await mesh.gateway.deps.mesh.inferencer.getPrompt({
      accountId: account.accountId,
      promptId,
    });
    const cost = prompt!.costMicros;
    expect(cost).toBeGreaterThan(10 ** 12);

    const line = await waitFor(
      async () => {
        const { lines } = await billing.getUsageReport({ accountId: account.accountId });
        return lines[0]?.costMicros ? lines[0] : undefined;
      },
      { what: 'the prediction cost in the usage report' },
    );
    expect(line).toMatchObject({ costMicros: cost, revenue: 100 + 3 * BIG_PRICE, payments: 4 });
  });
});
