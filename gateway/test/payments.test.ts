/**
 * Payments end to end: REST through the gateway, billing, Postgres and the Stripe sandbox, whose
 * signed webhooks come back through the gateway's /api/v1/payments/webhook. No mocks of our code.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { startMesh, waitFor, type Mesh } from '@atelier/infra/testing';
import { signatureHeader } from '@atelier/infra/sandbox/stripe';

let mesh: Mesh;
let db: Client;
let key: string;

beforeAll(async () => {
  // A short Stripe timeout keeps the "Stripe hangs" case quick; everything local answers in ms.
  mesh = await startMesh({ env: { RATE_LIMIT_PER_WINDOW: '10000', STRIPE_TIMEOUT_MS: '1000' } });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  ({ apiKey: key } = await mesh.createAccount());
});
afterAll(async () => {
  await db?.end();
  await mesh?.stop();
});

interface PaymentJson {
  payment_id: string;
  checkout_url: string;
  status: string;
  plan_id: string;
  version_id: string | null;
  amount: number;
  currency: string;
  promocode_applied: boolean;
  expires_at: string | null;
  created_at: string;
  paid_at: string | null;
}

const create = (body: unknown, opts: { apiKey?: string; headers?: Record<string, string> } = {}) =>
  mesh.api('/api/v1/payments/create', {
    key: opts.apiKey ?? key,
    method: 'POST',
    json: body,
    headers: opts.headers,
  });

async function createPayment(body: unknown = { plan_id: 'basic_init' }, apiKey = key): Promise<PaymentJson> {
  const res = await create(body, { apiKey });
  expect(res.status).toBe(201);
  return (await res.json()) as PaymentJson;
}

const sessionIdOf = (p: PaymentJson) => new URL(p.checkout_url).pathname.split('/').pop()!;

async function getPayment(id: string, apiKey = key): Promise<PaymentJson> {
  const res = await mesh.api(`/api/v1/payments/${id}`, { key: apiKey });
  expect(res.status).toBe(200);
  return (await res.json()) as PaymentJson;
}

const waitForStatus = (id: string, status: string, apiKey = key) =>
  waitFor(async () => ((await getPayment(id, apiKey)).status === status ? true : undefined), {
    timeoutMs: 10_000,
    what: `payment ${id} to be ${status}`,
  });

/** The customer submits the sandbox's checkout page, as a browser would (POST checkout_url). */
async function checkout(p: PaymentJson, outcome?: 'fail' | 'async'): Promise<void> {
  const url = outcome ? `${p.checkout_url}?outcome=${outcome}` : p.checkout_url;
  const res = await fetch(url, { method: 'POST', headers: { accept: 'application/json' } });
  expect(res.status).toBe(200);
}

const eventsOf = (sessionId: string, type?: string) =>
  mesh.stripe
    .events()
    .filter((e) => (e.data.object as { id?: string }).id === sessionId && (!type || e.type === type));

async function paymentRow(id: string) {
  const { rows } = await db.query(
    'SELECT status, paid_at, stripe_payment_intent FROM billing.payments WHERE id = $1',
    [id],
  );
  return rows[0] as { status: string; paid_at: Date | null; stripe_payment_intent: string | null };
}

async function eventRows(eventId: string): Promise<number> {
  const { rows } = await db.query('SELECT count(*)::int AS n FROM billing.stripe_events WHERE id = $1', [
    eventId,
  ]);
  return (rows[0] as { n: number }).n;
}

/** Runs fn with webhook delivery off, so the test decides what reaches the gateway and when. */
async function withoutDelivery<T>(fn: () => Promise<T>): Promise<T> {
  mesh.stripe.setWebhookUrl(null);
  try {
    return await fn();
  } finally {
    mesh.stripe.setWebhookUrl(`${mesh.gateway.url}/api/v1/payments/webhook`);
  }
}

describe('create → pay', () => {
  it('creates a Checkout Session for the plan carrying the payment id, and paying it makes the payment paid', async () => {
    const payment = await createPayment();
    expect(payment).toEqual(
      expect.objectContaining({
        plan_id: 'basic_init',
        status: 'pending',
        amount: 1300,
        currency: 'usd',
        version_id: null,
        promocode_applied: false,
        paid_at: null,
      }),
    );
    expect(payment.expires_at).not.toBeNull();

    const session = mesh.stripe.session(sessionIdOf(payment))!;
    expect(session).toEqual(
      expect.objectContaining({
        mode: 'payment',
        status: 'open',
        amount_total: 1300,
        currency: 'usd',
        client_reference_id: payment.payment_id,
      }),
    );
    expect(session.metadata).toEqual(
      expect.objectContaining({ payment_id: payment.payment_id, plan_id: 'basic_init' }),
    );
    expect(session.success_url).toContain(payment.payment_id);
    expect(session.cancel_url).toContain(payment.payment_id);

    await checkout(payment);
    await waitForStatus(payment.payment_id, 'paid');
    const paid = await getPayment(payment.payment_id);
    expect(paid.paid_at).not.toBeNull();
    expect((await paymentRow(payment.payment_id)).stripe_payment_intent).toBe(
      mesh.stripe.session(sessionIdOf(payment))!.payment_intent,
    );
  });

  it('a failed checkout (?outcome=fail) makes the payment failed', async () => {
    const payment = await createPayment();
    await checkout(payment, 'fail');
    await waitForStatus(payment.payment_id, 'failed');
  });

  it('an expired session makes the payment expired', async () => {
    const payment = await createPayment();
    await mesh.stripe.expire(sessionIdOf(payment));
    await waitForStatus(payment.payment_id, 'expired');
  });

  it('a delayed payment method stays pending until Stripe settles it, then becomes paid', async () => {
    const payment = await createPayment();
    await checkout(payment, 'async');
    await waitFor(
      () => eventsOf(sessionIdOf(payment), 'checkout.session.completed')[0]?.pending_webhooks === 0,
      { what: 'completed event delivered' },
    );
    expect((await getPayment(payment.payment_id)).status).toBe('pending');
    await mesh.stripe.settle(sessionIdOf(payment), 'succeed');
    await waitForStatus(payment.payment_id, 'paid');
  });

  it('does not trust the event snapshot: a "paid" event for a session Stripe says is unpaid pays nothing', async () => {
    const payment = await createPayment();
    const session = mesh.stripe.session(sessionIdOf(payment))!;
    for (const type of ['checkout.session.completed', 'checkout.session.async_payment_succeeded']) {
      const delivery = await mesh.stripe.sendEvent({
        type,
        object: { ...session, status: 'complete', payment_status: 'paid' },
      });
      expect(delivery.status).toBe(200);
    }
    expect((await getPayment(payment.payment_id)).status).toBe('pending');
    // And it can still be paid for real afterwards.
    await checkout(payment);
    await waitForStatus(payment.payment_id, 'paid');
  });

  it('expired and failed are terminal, and a paid payment is never moved back: events are checked against Stripe', async () => {
    const expired = await createPayment();
    await mesh.stripe.expire(sessionIdOf(expired));
    await waitForStatus(expired.payment_id, 'expired');
    const failed = await createPayment();
    await checkout(failed, 'fail');
    await waitForStatus(failed.payment_id, 'failed');
    const paid = await createPayment();
    await checkout(paid, 'async');
    await mesh.stripe.settle(sessionIdOf(paid), 'succeed');
    await waitForStatus(paid.payment_id, 'paid');

    // Forged-by-the-sandbox events (correctly signed) whose snapshots claim other outcomes.
    const lies: Array<[string, object]> = [
      [
        'checkout.session.completed',
        { ...mesh.stripe.session(sessionIdOf(expired)), status: 'complete', payment_status: 'paid' },
      ],
      [
        'checkout.session.async_payment_succeeded',
        { ...mesh.stripe.session(sessionIdOf(failed)), payment_status: 'paid' },
      ],
      ['checkout.session.expired', { ...mesh.stripe.session(sessionIdOf(paid)), status: 'expired' }],
      [
        'checkout.session.async_payment_failed',
        { ...mesh.stripe.session(sessionIdOf(paid)), payment_status: 'unpaid' },
      ],
    ];
    for (const [type, object] of lies) {
      const delivery = await mesh.stripe.sendEvent({ type, object });
      expect(delivery.status).toBe(200);
    }
    // A replay of the oldest real event of the async payment (its unpaid "completed") changes nothing either.
    const stale = eventsOf(sessionIdOf(paid), 'checkout.session.completed')[0]!;
    expect((await mesh.stripe.sendEvent(stale)).status).toBe(200);

    expect((await getPayment(expired.payment_id)).status).toBe('expired');
    expect((await getPayment(failed.payment_id)).status).toBe('failed');
    expect((await getPayment(paid.payment_id)).status).toBe('paid');
  });
});

describe('validation and ownership', () => {
  it('answers 404 for an unknown or deprecated plan', async () => {
    expect((await create({ plan_id: 'no_such_plan' })).status).toBe(404);
    const billing = mesh.gateway.deps.mesh.billing;
    await billing.upsertPlan({
      plan: {
        id: 'old_init',
        name: 'Old',
        description: '',
        price: 900,
        currency: 'usd',
        images: 10,
        isInit: true,
        minImages: 5,
        maxImages: 30,
        deprecated: true,
        tier: 'standard',
      },
    });
    expect((await create({ plan_id: 'old_init' })).status).toBe(404);
  });

  it('refuses a version_id on an init plan and requires one on an add-on plan (400)', async () => {
    const init = await create({ plan_id: 'basic_init', version_id: randomUUID() });
    expect(init.status).toBe(400);
    expect(((await init.json()) as { detail: string }).detail).toMatch(/version_id is not accepted/);
    const addon = await create({ plan_id: 'basic_extra_creds' });
    expect(addon.status).toBe(400);
    expect(((await addon.json()) as { detail: string }).detail).toMatch(/version_id is required/);
  });

  it("answers 404 for another account's payment and for an unknown one", async () => {
    const payment = await createPayment();
    const other = await mesh.createAccount();
    expect((await mesh.api(`/api/v1/payments/${payment.payment_id}`, { key: other.apiKey })).status).toBe(
      404,
    );
    expect((await mesh.api(`/api/v1/payments/${randomUUID()}`, { key })).status).toBe(404);
  });
});

describe('promotion codes', () => {
  it('applies an active code: the session carries the discount and the payment its price', async () => {
    const payment = await createPayment({ plan_id: 'basic_init', promocode_id: 'promo_sandbox_active10' });
    expect(payment.promocode_applied).toBe(true);
    expect(payment.amount).toBe(1170);
    const session = mesh.stripe.session(sessionIdOf(payment))!;
    expect(session.amount_total).toBe(1170);
    expect(session.discounts).toEqual([
      expect.objectContaining({ promotion_code: 'promo_sandbox_active10' }),
    ]);
  });

  it('also takes the customer-facing code', async () => {
    const payment = await createPayment({ plan_id: 'basic_init', promocode_id: 'FIVEOFF' });
    expect(payment.promocode_applied).toBe(true);
    expect(payment.amount).toBe(800);
  });

  it.each([
    ['inactive', 'promo_sandbox_inactive'],
    ['expired', 'promo_sandbox_expired'],
    ['unknown', 'promo_does_not_exist'],
    ['unknown customer-facing', 'NOSUCHCODE'],
  ])('makes the session without an %s code: promocode_applied=false, full price', async (_what, code) => {
    const payment = await createPayment({ plan_id: 'basic_init', promocode_id: code });
    expect(payment.promocode_applied).toBe(false);
    expect(payment.amount).toBe(1300);
    const session = mesh.stripe.session(sessionIdOf(payment))!;
    expect(session.amount_total).toBe(1300);
    expect(session.discounts).toEqual([]);
  });
});

describe('webhook signature', () => {
  it('answers 400 to a bad signature, a tampered body, a stale timestamp and no signature, and nothing changes', async () => {
    const payment = await createPayment();
    const completed = await withoutDelivery(async () => {
      await checkout(payment);
      return eventsOf(sessionIdOf(payment), 'checkout.session.completed')[0]!;
    });
    const webhook = '/api/v1/payments/webhook';
    const payload = JSON.stringify(completed, null, 2);
    const post = (body: string, headers: Record<string, string>) =>
      mesh.api(webhook, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });

    const wrongSecret = await mesh.stripe.sendEvent(completed, { secret: 'whsec_not_ours' });
    expect(wrongSecret.status).toBe(400);
    const garbage = await mesh.stripe.sendEvent(completed, { signature: 't=1,v1=deadbeef' });
    expect(garbage.status).toBe(400);
    const stale = await mesh.stripe.sendEvent(completed, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(stale.status).toBe(400);
    // Signed for the genuine bytes, delivered with one byte changed.
    const tampered = await post(payload.replace('"livemode": false', '"livemode": true '), {
      'stripe-signature': signatureHeader(payload, mesh.stripe.webhookSecret),
    });
    expect(tampered.status).toBe(400);
    expect(((await tampered.json()) as { type: string }).type).toMatch(/invalid-signature$/);
    const unsigned = await post(payload, {});
    expect(unsigned.status).toBe(400);

    expect((await getPayment(payment.payment_id)).status).toBe('pending');
    expect(await eventRows(completed.id)).toBe(0);

    // The genuine delivery, just inside the tolerance, is applied.
    const genuine = await mesh.stripe.sendEvent(completed, {
      timestamp: Math.floor(Date.now() / 1000) - 280,
    });
    expect(genuine.status).toBe(200);
    expect((await getPayment(payment.payment_id)).status).toBe('paid');
  });

  it('answers 200 to an event type it does not handle, and records nothing', async () => {
    const delivery = await mesh.stripe.sendEvent({
      type: 'customer.created',
      object: { id: 'cus_test', object: 'customer' },
    });
    expect(delivery.status).toBe(200);
    expect(await eventRows(mesh.stripe.events().at(-1)!.id)).toBe(0);
  });
});

describe('redelivery and reordering', () => {
  it('applies an event delivered 5 times (at once and again one by one) exactly once', async () => {
    const payment = await createPayment();
    const completed = await withoutDelivery(async () => {
      await checkout(payment);
      return eventsOf(sessionIdOf(payment), 'checkout.session.completed')[0]!;
    });
    const burst = await Promise.all(Array.from({ length: 5 }, () => mesh.stripe.sendEvent(completed)));
    expect(burst.map((d) => d.status)).toEqual([200, 200, 200, 200, 200]);
    const first = await paymentRow(payment.payment_id);
    expect(first.status).toBe('paid');
    for (let i = 0; i < 5; i++) expect((await mesh.stripe.sendEvent(completed)).status).toBe(200);
    expect(await paymentRow(payment.payment_id)).toEqual(first);
    expect(await eventRows(completed.id)).toBe(1);
  });

  it('ends in the right state when events arrive out of order', async () => {
    const payment = await createPayment();
    const [completed, succeeded] = await withoutDelivery(async () => {
      await checkout(payment, 'async');
      await mesh.stripe.settle(sessionIdOf(payment), 'succeed');
      return [
        eventsOf(sessionIdOf(payment), 'checkout.session.completed')[0]!,
        eventsOf(sessionIdOf(payment), 'checkout.session.async_payment_succeeded')[0]!,
      ];
    });
    expect((await mesh.stripe.sendEvent(succeeded)).status).toBe(200);
    expect((await getPayment(payment.payment_id)).status).toBe('paid');
    // The older event (its snapshot says unpaid) arrives last and must not undo anything.
    expect((await mesh.stripe.sendEvent(completed)).status).toBe(200);
    expect((await getPayment(payment.payment_id)).status).toBe('paid');
  });
});

describe('Idempotency-Key on POST /api/v1/payments/create', () => {
  it('replays the first response byte for byte for the same key and body, and answers 422 for another body', async () => {
    const idem = `pay-${randomUUID()}`;
    const first = await create({ plan_id: 'basic_init' }, { headers: { 'idempotency-key': idem } });
    expect(first.status).toBe(201);
    const firstBody = await first.text();
    const again = await create({ plan_id: 'basic_init' }, { headers: { 'idempotency-key': idem } });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(firstBody);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM billing.payments WHERE id = $1', [
      (JSON.parse(firstBody) as PaymentJson).payment_id,
    ]);
    expect(rows[0]).toEqual({ n: 1 });

    const other = await create(
      { plan_id: 'basic_init', promocode_id: 'promo_sandbox_active10' },
      { headers: { 'idempotency-key': idem } },
    );
    expect(other.status).toBe(422);
    // Without the key, each request is a new payment.
    const fresh = (await createPayment()).payment_id;
    expect(fresh).not.toBe((JSON.parse(firstBody) as PaymentJson).payment_id);
  });
});

describe('Stripe outages', () => {
  const pendingRows = async (account: string) => {
    const { rows } = await db.query<{ status: string; stripe_session_id: string | null }>(
      'SELECT status, stripe_session_id FROM billing.payments WHERE account_id = $1',
      [account],
    );
    return rows;
  };

  it('answers 503 when Stripe keeps failing, and leaves no usable pending payment', async () => {
    const other = await mesh.createAccount();
    mesh.stripe.failNext('POST /v1/checkout/sessions', 500, 3);
    const res = await create({ plan_id: 'basic_init' }, { apiKey: other.apiKey });
    expect(res.status).toBe(503);
    expect(await pendingRows(other.accountId)).toEqual([{ status: 'failed', stripe_session_id: null }]);
    // Once Stripe answers again, so do we.
    expect((await create({ plan_id: 'basic_init' }, { apiKey: other.apiKey })).status).toBe(201);
  });

  it('rides out one Stripe 500 with the client retry (same idempotency key)', async () => {
    mesh.stripe.failNext('POST /v1/checkout/sessions', 500, 1);
    const payment = await createPayment();
    expect(payment.status).toBe('pending');
    expect(mesh.stripe.session(sessionIdOf(payment))?.metadata).toEqual(
      expect.objectContaining({ payment_id: payment.payment_id }),
    );
  });

  it('answers 504 when Stripe does not answer in time, and leaves no usable pending payment', async () => {
    const other = await mesh.createAccount();
    mesh.stripe.failNext('POST /v1/checkout/sessions', 'hang', 3);
    const res = await create({ plan_id: 'basic_init' }, { apiKey: other.apiKey });
    expect(res.status).toBe(504);
    expect(await pendingRows(other.accountId)).toEqual([{ status: 'failed', stripe_session_id: null }]);
    mesh.stripe.clearFaults();
  });

  it('answers 503 to a webhook while Stripe cannot be asked, so Stripe retries; the redelivery applies', async () => {
    const payment = await createPayment();
    const completed = await withoutDelivery(async () => {
      await checkout(payment);
      return eventsOf(sessionIdOf(payment), 'checkout.session.completed')[0]!;
    });
    mesh.stripe.failNext('GET /v1/checkout/sessions', 503, 3);
    expect((await mesh.stripe.sendEvent(completed)).status).toBe(503);
    expect((await getPayment(payment.payment_id)).status).toBe('pending');
    expect(await eventRows(completed.id)).toBe(0);
    expect((await mesh.stripe.sendEvent(completed)).status).toBe(200);
    expect((await getPayment(payment.payment_id)).status).toBe('paid');
  });
});
