/**
 * The Stripe sandbox, driven through the official `stripe` client exactly as Atelier's billing
 * service drives Stripe, with webhooks received and verified by `stripe.webhooks.constructEvent`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { startStripeSandbox, type StripeSandbox } from '../sandbox/stripe';

interface Received {
  raw: string;
  signature: string;
  event: Stripe.Event | null;
  error: string | null;
}

/** A webhook endpoint like Atelier's: verifies the signature on the raw body, 400 when it fails. */
class Receiver {
  readonly received: Received[] = [];
  /** Answers for the next requests (per event id), before falling back to normal handling. */
  readonly scripted = new Map<string, number[]>();
  private server!: Server;
  url = '';

  constructor(
    private readonly stripe: Stripe,
    private readonly secret: string,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const signature = String(req.headers['stripe-signature'] ?? '');
        let event: Stripe.Event | null = null;
        let error: string | null = null;
        try {
          event = this.stripe.webhooks.constructEvent(raw, signature, this.secret);
        } catch (err) {
          error = (err as Error).message;
        }
        this.received.push({ raw, signature, event, error });
        const script = event ? this.scripted.get(event.id) : undefined;
        const status = script?.shift() ?? (event ? 200 : 400);
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhook`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Verified events about one object, in arrival order. */
  eventsFor(objectId: string): Stripe.Event[] {
    return this.received
      .map((r) => r.event)
      .filter((e): e is Stripe.Event => e !== null && (e.data.object as { id?: string }).id === objectId);
  }
}

/** Polls until `check` returns a value other than undefined/false, or fails after the deadline. */
async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `condition not met within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

function sessionParams(
  overrides: Partial<Stripe.Checkout.SessionCreateParams> = {},
): Stripe.Checkout.SessionCreateParams {
  return {
    mode: 'payment',
    line_items: [
      {
        price_data: { currency: 'usd', unit_amount: 1300, product_data: { name: 'Basic training' } },
        quantity: 1,
      },
    ],
    success_url: 'https://atelier.test/paid?session={CHECKOUT_SESSION_ID}',
    cancel_url: 'https://atelier.test/cancelled',
    client_reference_id: 'acct-7',
    metadata: { payment_id: 'pay-1', plan_id: 'basic_init' },
    ...overrides,
  };
}

async function expectStripeError(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(Stripe.errors.StripeError);
    return err as Stripe.errors.StripeError;
  }
  throw new Error('expected the call to fail');
}

let sandbox: StripeSandbox;
let stripe: Stripe;
let receiver: Receiver;

beforeAll(async () => {
  sandbox = await startStripeSandbox({ webhookRetry: { baseDelayMs: 50, maxDelayMs: 200, attempts: 4 } });
  stripe = new Stripe(sandbox.secretKey, { ...sandbox.clientConfig });
  receiver = new Receiver(stripe, sandbox.webhookSecret);
  await receiver.start();
  sandbox.setWebhookUrl(receiver.url);
});

afterAll(async () => {
  await sandbox.stop();
  await receiver.stop();
});

describe('checkout sessions', () => {
  it('creates a session with Stripe’s shape, metadata, reference and a percent-off promotion code', async () => {
    const before = Math.floor(Date.now() / 1000);
    const session = await stripe.checkout.sessions.create(
      sessionParams({ discounts: [{ promotion_code: 'promo_sandbox_active10' }] }),
    );
    expect(session.id).toMatch(/^cs_test_[A-Za-z0-9]{58}$/);
    expect(session).toMatchObject({
      object: 'checkout.session',
      status: 'open',
      payment_status: 'unpaid',
      mode: 'payment',
      currency: 'usd',
      amount_subtotal: 1300,
      amount_total: 1170,
      total_details: { amount_discount: 130 },
      discounts: [{ promotion_code: 'promo_sandbox_active10' }],
      client_reference_id: 'acct-7',
      metadata: { payment_id: 'pay-1', plan_id: 'basic_init' },
      livemode: false,
      payment_intent: null,
    });
    expect(session.url).toBe(`${sandbox.url}/checkout/${session.id}`);
    expect(session.expires_at).toBeGreaterThanOrEqual(before + 24 * 3600);
    expect(session.expires_at).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 24 * 3600);

    const fiveOff = await stripe.checkout.sessions.create(
      sessionParams({ discounts: [{ promotion_code: 'promo_sandbox_active500' }] }),
    );
    expect([fiveOff.amount_total, fiveOff.total_details?.amount_discount]).toEqual([800, 500]);
  });

  it('retrieves a session as created', async () => {
    const created = await stripe.checkout.sessions.create(sessionParams());
    const { lastResponse: _a, ...createdBody } = created;
    const { lastResponse: _b, ...fetched } = await stripe.checkout.sessions.retrieve(created.id);
    expect(fetched).toEqual(createdBody);
  });

  it('expires an open session once, then answers Stripe’s 400', async () => {
    const created = await stripe.checkout.sessions.create(sessionParams());
    const expired = await stripe.checkout.sessions.expire(created.id);
    expect(expired).toMatchObject({ status: 'expired', url: null });
    const err = await expectStripeError(stripe.checkout.sessions.expire(created.id));
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(400);
    expect(err.message).toBe(
      'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of `expired`.',
    );
    const [event] = await waitFor(
      () => receiver.eventsFor(created.id).length === 1 && receiver.eventsFor(created.id),
    );
    expect(event?.type).toBe('checkout.session.expired');
    // Caused by an API call: the event names the request and its idempotency key.
    expect(event?.request?.id).toMatch(/^req_/);
    expect(event?.request?.idempotency_key).toMatch(/^stripe-node-retry-/);
  });

  it('answers an unknown session with a 404 resource_missing', async () => {
    const err = await expectStripeError(stripe.checkout.sessions.retrieve('cs_test_nope'));
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err).toMatchObject({
      statusCode: 404,
      code: 'resource_missing',
      message: "No such checkout.session: 'cs_test_nope'",
    });
  });

  it('refuses inactive, expired and unknown promotion codes', async () => {
    for (const id of ['promo_sandbox_inactive', 'promo_sandbox_expired']) {
      const err = await expectStripeError(
        stripe.checkout.sessions.create(sessionParams({ discounts: [{ promotion_code: id }] })),
      );
      expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(err).toMatchObject({ statusCode: 400, param: 'discounts[0][promotion_code]' });
      expect(err.message).toMatch(
        /^This promotion code cannot be redeemed because it (is inactive|has expired)\.$/,
      );
    }
    const unknown = await expectStripeError(
      stripe.checkout.sessions.create(sessionParams({ discounts: [{ promotion_code: 'promo_nope' }] })),
    );
    expect(unknown).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  it('reports missing and unknown params the way Stripe does', async () => {
    const missing = await expectStripeError(
      stripe.checkout.sessions.create({ mode: 'payment', success_url: 'https://atelier.test/ok' }),
    );
    expect(missing).toMatchObject({ statusCode: 400, code: 'parameter_missing', param: 'line_items' });

    const noQuantity = await expectStripeError(
      stripe.checkout.sessions.create(
        sessionParams({
          line_items: [
            { price_data: { currency: 'usd', unit_amount: 1300, product_data: { name: 'Basic' } } },
          ],
        }),
      ),
    );
    expect(noQuantity).toMatchObject({ code: 'parameter_missing', param: 'line_items[0][quantity]' });

    // Raw form encoding, as any Stripe client sends it.
    const res = await fetch(`${sandbox.url}/v1/checkout/sessions`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${sandbox.secretKey}`,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body:
        'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1300' +
        '&line_items[0][price_data][product_data][name]=Basic&line_items[0][quantity]=2&metadata[payment_id]=p-9&colour=blue',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: expect.objectContaining({
        type: 'invalid_request_error',
        code: 'parameter_unknown',
        param: 'colour',
      }),
    });
  });

  it('rejects a wrong API key with 401', async () => {
    const wrong = new Stripe('sk_test_wrong_key_1234', { ...sandbox.clientConfig });
    const err = await expectStripeError(wrong.checkout.sessions.retrieve('cs_test_x'));
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(err.statusCode).toBe(401);
    expect(err.message).toMatch(/^Invalid API Key provided: sk_test_/);
  });

  it('replays a request with the same Idempotency-Key and refuses the key with other params', async () => {
    const key = `idem-${Date.now()}`;
    const first = await stripe.checkout.sessions.create(sessionParams(), { idempotencyKey: key });
    const again = await stripe.checkout.sessions.create(sessionParams(), { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    const err = await expectStripeError(
      stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'someone-else' }), {
        idempotencyKey: key,
      }),
    );
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(err.statusCode).toBe(400);
  });

  it('serves the checkout page', async () => {
    const session = await stripe.checkout.sessions.create(
      sessionParams({ discounts: [{ promotion_code: 'promo_sandbox_active10' }] }),
    );
    const res = await fetch(session.url as string);
    const html = await res.text();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html).toContain('Basic training');
    expect(html).toContain('$11.70');
    expect(html).toContain('?outcome=fail');
  });
});

describe('promotion codes', () => {
  it('lists by code, case-insensitively, with the coupon as an id unless expanded', async () => {
    const list = await stripe.promotionCodes.list({ code: 'welcome10' });
    expect(list).toMatchObject({ object: 'list', has_more: false, url: '/v1/promotion_codes' });
    expect(list.data.map((p) => p.id)).toEqual(['promo_sandbox_active10']);
    expect(list.data[0]?.promotion).toEqual({ type: 'coupon', coupon: expect.any(String) });

    const expanded = await stripe.promotionCodes.list({
      code: 'WELCOME10',
      expand: ['data.promotion.coupon'],
    });
    expect((expanded.data[0]?.promotion.coupon as Stripe.Coupon).percent_off).toBe(10);
    const fiveOff = await stripe.promotionCodes.retrieve('promo_sandbox_active500', {
      expand: ['promotion.coupon'],
    });
    expect(fiveOff.promotion.coupon).toMatchObject({ object: 'coupon', amount_off: 500, currency: 'usd' });

    // `expand[]=` as curl users write it, next to the client's `expand[0]=`.
    const res = await fetch(`${sandbox.url}/v1/promotion_codes?code=FIVEOFF&expand[]=data.promotion.coupon`, {
      headers: { Authorization: `Bearer ${sandbox.secretKey}` },
    });
    const body = (await res.json()) as Stripe.ApiList<Stripe.PromotionCode>;
    expect(body.data[0]?.promotion.coupon).toMatchObject({ amount_off: 500 });
  });

  it('reports inactive and expired codes as not active', async () => {
    const expired = await stripe.promotionCodes.retrieve('promo_sandbox_expired');
    expect(expired.active).toBe(false);
    expect(expired.expires_at).toBeLessThan(Date.now() / 1000);
    const inactive = await stripe.promotionCodes.list({ active: false });
    expect(inactive.data.map((p) => p.id).sort()).toEqual([
      'promo_sandbox_expired',
      'promo_sandbox_inactive',
    ]);
    const err = await expectStripeError(stripe.promotionCodes.retrieve('promo_nope'));
    expect(err.statusCode).toBe(404);
  });
});

describe('payments and webhooks', () => {
  it('pays through the checkout URL and delivers a verifiable checkout.session.completed', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    const res = await fetch(session.url as string, {
      method: 'POST',
      headers: { Accept: 'application/json' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: session.id, status: 'complete', payment_status: 'paid' });

    const [event] = await waitFor(
      () => receiver.eventsFor(session.id).length > 0 && receiver.eventsFor(session.id),
    );
    expect(event?.type).toBe('checkout.session.completed');
    expect(event).toMatchObject({
      object: 'event',
      livemode: false,
      api_version: Stripe.API_VERSION,
      request: null,
    });
    expect(event?.id).toMatch(/^evt_/);
    const completed = event?.data.object as Stripe.Checkout.Session;
    expect(completed).toMatchObject({
      status: 'complete',
      payment_status: 'paid',
      client_reference_id: 'acct-7',
      metadata: { payment_id: 'pay-1', plan_id: 'basic_init' },
      amount_total: 1300,
      url: null,
    });
    expect(completed.payment_intent).toMatch(/^pi_/);

    // The endpoint has answered; the sandbox records the attempt once the answer reaches it.
    const delivery = await waitFor(() => sandbox.deliveries().find((d) => d.eventId === event?.id));
    expect(delivery).toMatchObject({ attempt: 1, status: 200, ok: true });
    const fetched = await stripe.events.retrieve(event?.id as string);
    expect(fetched.pending_webhooks).toBe(0);
    const intent = await stripe.paymentIntents.retrieve(completed.payment_intent as string);
    expect(intent).toMatchObject({ status: 'succeeded', amount_received: 1300 });
  });

  it('redirects a browser to success_url with the session id filled in', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    const res = await fetch(session.url as string, { method: 'POST', redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`https://atelier.test/paid?session=${session.id}`);
  });

  it('a failed payment completes unpaid, then reports async_payment_failed', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    const res = await fetch(`${session.url}?outcome=fail`, { method: 'POST', redirect: 'manual' });
    expect(res.headers.get('location')).toBe('https://atelier.test/cancelled');
    const events = await waitFor(
      () => receiver.eventsFor(session.id).length === 2 && receiver.eventsFor(session.id),
    );
    expect(events.map((e) => [e.type, (e.data.object as Stripe.Checkout.Session).payment_status])).toEqual([
      ['checkout.session.completed', 'unpaid'],
      ['checkout.session.async_payment_failed', 'unpaid'],
    ]);
  });

  it('a delayed payment completes unpaid and succeeds when settled', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    await sandbox.pay(session.id, 'async_pending');
    await waitFor(() => receiver.eventsFor(session.id).length === 1);
    await sandbox.settle(session.id, 'succeed');
    const events = await waitFor(
      () => receiver.eventsFor(session.id).length === 2 && receiver.eventsFor(session.id),
    );
    expect(events.map((e) => [e.type, (e.data.object as Stripe.Checkout.Session).payment_status])).toEqual([
      ['checkout.session.completed', 'unpaid'],
      ['checkout.session.async_payment_succeeded', 'paid'],
    ]);
    expect((await stripe.checkout.sessions.retrieve(session.id)).payment_status).toBe('paid');
  });

  it('retries a failing endpoint with backoff until it answers 2xx', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    // The event id is known only once it exists: script the endpoint for the next event id seen.
    const payment = sandbox.pay(session.id);
    const [event] = sandbox.events().filter((e) => (e.data.object as { id: string }).id === session.id);
    receiver.scripted.set(event?.id as string, [500, 500]);
    await payment;
    const attempts = await waitFor(() => {
      const mine = sandbox.deliveries().filter((d) => d.eventId === event?.id);
      return mine.some((d) => d.ok) && mine;
    });
    expect(attempts.map((d) => [d.attempt, d.status])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    expect(attempts[1]!.startedAt - attempts[0]!.startedAt).toBeGreaterThanOrEqual(45);
    expect(attempts[2]!.startedAt - attempts[1]!.startedAt).toBeGreaterThanOrEqual(95);
    // Each attempt is signed afresh, and each one verifies.
    expect(receiver.received.filter((r) => r.event?.id === event?.id && r.error === null)).toHaveLength(3);
  });

  it('refunds through the API and emits charge.refunded', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    const paid = await sandbox.pay(session.id);
    const paymentIntent = paid.payment_intent as string;

    const partial = await stripe.refunds.create({ payment_intent: paymentIntent, amount: 300 });
    expect(partial).toMatchObject({
      object: 'refund',
      amount: 300,
      status: 'succeeded',
      payment_intent: paymentIntent,
      currency: 'usd',
    });
    expect(partial.id).toMatch(/^re_/);
    const rest = await stripe.refunds.create({ payment_intent: paymentIntent });
    expect(rest.amount).toBe(1000);
    const again = await expectStripeError(stripe.refunds.create({ payment_intent: paymentIntent }));
    expect(again).toMatchObject({ statusCode: 400, code: 'charge_already_refunded' });

    const charge = partial.charge as string;
    const refunded = await waitFor(
      () => receiver.eventsFor(charge).length === 2 && receiver.eventsFor(charge),
    );
    expect(refunded.map((e) => e.type)).toEqual(['charge.refunded', 'charge.refunded']);
    expect(refunded.map((e) => e.data.object)).toEqual([
      expect.objectContaining({
        object: 'charge',
        payment_intent: paymentIntent,
        amount_refunded: 300,
        refunded: false,
      }),
      expect.objectContaining({
        object: 'charge',
        payment_intent: paymentIntent,
        amount_refunded: 1300,
        refunded: true,
      }),
    ]);
    expect(refunded[0]?.request?.id).toMatch(/^req_/);
  });

  it('sends forged and stale deliveries that the endpoint rejects', async () => {
    const forged = await sandbox.sendEvent(
      { type: 'checkout.session.completed', object: { id: 'cs_test_forged' } },
      { signature: 't=1,v1=00' },
    );
    expect(forged).toMatchObject({ status: 400, ok: false, attempt: 1 });
    const stale = await sandbox.sendEvent(
      { type: 'checkout.session.completed', object: { id: 'cs_test_stale' } },
      { timestamp: Math.floor(Date.now() / 1000) - 3600 },
    );
    expect(stale.status).toBe(400);
    const errors = receiver.received.filter((r) => r.error !== null).map((r) => r.error);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/No signatures found/),
        expect.stringMatching(/tolerance/),
      ]),
    );
    // A genuine redelivery of a recorded event verifies again.
    const recorded = sandbox.events()[0]!;
    expect((await sandbox.sendEvent(recorded)).status).toBe(200);
  });
});

describe('fault injection', () => {
  it('answers injected 5xx, which the client retries', async () => {
    const noRetry = new Stripe(sandbox.secretKey, { ...sandbox.clientConfig, maxNetworkRetries: 0 });
    sandbox.failNext('POST /v1/checkout/sessions', 503);
    const err = await expectStripeError(noRetry.checkout.sessions.create(sessionParams()));
    expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(err.statusCode).toBe(503);

    // The default client retries 5xx under the same idempotency key: one session comes of it.
    sandbox.failNext('POST /v1/checkout/sessions', 500, 1);
    const session = await stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'retried' }));
    expect(session.client_reference_id).toBe('retried');
  });

  it('hangs a request until the client times out', async () => {
    const impatient = new Stripe(sandbox.secretKey, {
      ...sandbox.clientConfig,
      maxNetworkRetries: 0,
      timeout: 300,
    });
    sandbox.failNext('GET /v1/promotion_codes', 'hang');
    const err = await expectStripeError(impatient.promotionCodes.retrieve('promo_sandbox_active10'));
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    // The fault is spent: the next call answers.
    expect((await impatient.promotionCodes.retrieve('promo_sandbox_active10')).code).toBe('WELCOME10');
  });
});
