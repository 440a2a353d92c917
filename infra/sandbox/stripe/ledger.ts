/**
 * The sandbox's in-memory Stripe account: sessions, the payment intents and charges behind them,
 * refunds, and the state changes that raise events. Every change that Stripe would announce calls
 * `emit` with the object as it is right after the change.
 */
import { Errors } from './errors';
import type { FormObject } from './form';
import { newId } from './ids';
import {
  nowSeconds,
  type ChargeObject,
  type PaymentIntentObject,
  type RefundObject,
  type SessionObject,
  type SessionRecord,
} from './objects';
import { metadata, optInt, optString } from './params';
import { Promotions } from './promotions';
import { createSession } from './sessions';

/** What caused an event: the API request (id, idempotency key), or null for a customer or a test hook. */
export interface RequestInfo {
  id: string | null;
  idempotency_key: string | null;
}

export type Emit = (type: string, object: object, request: RequestInfo | null) => void;

/**
 * How the customer's payment goes. `fail` is modelled as a delayed payment method that fails:
 * Stripe never completes a session on a declined card (the customer stays on the page), so the
 * only failure a webhook can report is `checkout.session.async_payment_failed`.
 */
export type PayOutcome = 'succeed' | 'fail' | 'async_pending';

export class Ledger {
  readonly promotions = new Promotions();
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly intents = new Map<string, PaymentIntentObject>();
  private readonly charges = new Map<string, ChargeObject>();
  private readonly refunds = new Map<string, RefundObject>();

  constructor(
    private readonly emit: Emit,
    private readonly checkoutUrl: (id: string) => string,
  ) {}

  createSession(params: FormObject): SessionObject {
    const record = createSession(params, this.promotions, this.checkoutUrl);
    this.sessions.set(record.session.id, record);
    return record.session;
  }

  record(id: string, param = 'session'): SessionRecord {
    const record = this.sessions.get(id);
    if (!record) throw Errors.resourceMissing('checkout.session', id, param);
    return record;
  }

  /** Any stored object by id, for retrieval and `expand[]`. */
  find(id: string): object | undefined {
    return (
      this.sessions.get(id)?.session ??
      this.intents.get(id) ??
      this.charges.get(id) ??
      this.refunds.get(id) ??
      this.promotions.get(id) ??
      this.promotions.coupons.get(id)
    );
  }

  expire(id: string, request: RequestInfo | null): SessionObject {
    const { session } = this.record(id);
    if (session.status !== 'open') {
      throw Errors.invalid(
        undefined,
        `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of \`${session.status}\`.`,
      );
    }
    session.status = 'expired';
    session.url = null;
    this.emit('checkout.session.expired', session, request);
    return session;
  }

  /** Expires open sessions whose `expires_at` has passed, as Stripe does on its own. */
  sweep(): void {
    const now = nowSeconds();
    for (const { session } of this.sessions.values()) {
      if (session.status === 'open' && session.expires_at <= now) this.expire(session.id, null);
    }
  }

  /** The customer submits the checkout page. */
  pay(id: string, outcome: PayOutcome): SessionObject {
    const record = this.record(id);
    const { session } = record;
    if (session.status === 'open' && session.expires_at <= nowSeconds()) this.expire(id, null);
    if (session.status !== 'open') {
      throw Errors.invalid(
        undefined,
        `This Checkout Session is no longer open: its status is \`${session.status}\`.`,
      );
    }
    session.status = 'complete';
    session.url = null;
    session.customer_details = {
      address: null,
      business_name: null,
      email: session.customer_email ?? 'buyer@example.com',
      individual_name: null,
      name: 'Sandbox Buyer',
      phone: null,
      tax_exempt: 'none',
      tax_ids: [],
    };
    if (record.promotionCodeId) this.promotions.redeemed(record.promotionCodeId);
    else if (record.couponId) {
      const coupon = this.promotions.coupons.get(record.couponId);
      if (coupon) coupon.times_redeemed += 1;
    }
    // A fully discounted session charges nothing: Stripe creates no PaymentIntent for it.
    if (session.amount_total === 0) {
      session.payment_status = 'no_payment_required';
      this.emit('checkout.session.completed', session, null);
      return session;
    }
    const { intent } = this.startPayment(record, outcome === 'succeed');
    session.payment_intent = intent.id;
    session.payment_status = outcome === 'succeed' ? 'paid' : 'unpaid';
    this.emit('checkout.session.completed', session, null);
    if (outcome === 'fail') this.settle(id, 'fail');
    return session;
  }

  /** A delayed payment method (`async_pending`) finally succeeds or fails. */
  settle(id: string, outcome: 'succeed' | 'fail'): SessionObject {
    const { session } = this.record(id);
    const intent =
      typeof session.payment_intent === 'string' ? this.intents.get(session.payment_intent) : undefined;
    if (session.status !== 'complete' || !intent || intent.status !== 'processing') {
      throw Errors.invalid(undefined, `Checkout Session ${id} has no payment awaiting settlement.`);
    }
    const charge = this.charges.get(intent.latest_charge as string) as ChargeObject;
    if (outcome === 'succeed') {
      Object.assign(intent, { status: 'succeeded', amount_received: intent.amount });
      Object.assign(charge, {
        status: 'succeeded',
        paid: true,
        captured: true,
        amount_captured: charge.amount,
      });
      session.payment_status = 'paid';
      this.emit('checkout.session.async_payment_succeeded', session, null);
    } else {
      const message = 'The customer’s account has insufficient funds to cover this payment.';
      Object.assign(intent, {
        status: 'requires_payment_method',
        last_payment_error: { type: 'card_error', code: 'insufficient_funds', message, charge: charge.id },
      });
      Object.assign(charge, {
        status: 'failed',
        failure_code: 'insufficient_funds',
        failure_message: message,
      });
      this.emit('checkout.session.async_payment_failed', session, null);
    }
    return session;
  }

  /** `POST /v1/refunds` (or a refund made from the Dashboard, when `request` is null). */
  refund(params: FormObject, request: RequestInfo | null): RefundObject {
    const piId = optString(params['payment_intent'], 'payment_intent');
    const chargeId = optString(params['charge'], 'charge');
    if (piId === undefined && chargeId === undefined) {
      throw Errors.invalid(
        undefined,
        'One of the following params should be provided for this request: payment_intent or charge.',
      );
    }
    let charge: ChargeObject | undefined;
    if (piId !== undefined) {
      const intent = this.intents.get(piId);
      if (!intent) throw Errors.resourceMissing('payment_intent', piId, 'payment_intent');
      charge = intent.status === 'succeeded' ? this.charges.get(intent.latest_charge as string) : undefined;
      if (!charge)
        throw Errors.invalid(
          'payment_intent',
          `This PaymentIntent (${piId}) does not have a successful charge to refund.`,
        );
    }
    if (chargeId !== undefined) {
      const byId = this.charges.get(chargeId);
      if (!byId) throw Errors.resourceMissing('charge', chargeId, 'charge');
      if (charge && charge.id !== byId.id)
        throw Errors.invalid('charge', `Charge ${chargeId} does not belong to PaymentIntent ${piId}.`);
      charge = byId;
    }
    const target = charge as ChargeObject;
    if (target.status !== 'succeeded')
      throw Errors.invalid('charge', `Charge ${target.id} has not succeeded and cannot be refunded.`);
    if (target.refunded) throw Errors.chargeAlreadyRefunded(target.id);
    const remaining = target.amount - target.amount_refunded;
    const amount = optInt(params['amount'], 'amount') ?? remaining;
    if (amount < 1) throw Errors.invalid('amount', 'Invalid positive integer');
    if (amount > remaining) {
      throw Errors.invalid(
        'amount',
        `Refund amount (${money(amount, target.currency)}) is greater than unrefunded amount on charge (${money(remaining, target.currency)})`,
      );
    }
    const reason = optString(params['reason'], 'reason') ?? null;
    if (reason !== null && !['duplicate', 'fraudulent', 'requested_by_customer'].includes(reason)) {
      throw Errors.invalid(
        'reason',
        `Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer`,
      );
    }
    const refund: RefundObject = {
      id: newId.refund(),
      object: 'refund',
      amount,
      balance_transaction: null,
      charge: target.id,
      created: nowSeconds(),
      currency: target.currency,
      metadata: metadata(params['metadata']),
      payment_intent: target.payment_intent,
      reason,
      receipt_number: null,
      status: 'succeeded',
    };
    this.refunds.set(refund.id, refund);
    target.amount_refunded += amount;
    target.refunded = target.amount_refunded >= target.amount;
    this.emit('charge.refunded', target, request);
    this.emit('refund.created', refund, request);
    return refund;
  }

  private startPayment(
    record: SessionRecord,
    succeeded: boolean,
  ): { intent: PaymentIntentObject; charge: ChargeObject } {
    const { session } = record;
    const created = nowSeconds();
    const amount = session.amount_total ?? 0;
    const currency = session.currency ?? 'usd';
    const paymentMethod = newId.paymentMethod();
    const intent: PaymentIntentObject = {
      id: newId.paymentIntent(),
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_received: succeeded ? amount : 0,
      canceled_at: null,
      capture_method: 'automatic_async',
      client_secret: null,
      confirmation_method: 'automatic',
      created,
      currency,
      customer: null,
      description: null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      metadata: { ...record.paymentIntentMetadata },
      payment_method: paymentMethod,
      payment_method_types: ['card'],
      status: succeeded ? 'succeeded' : 'processing',
    };
    const charge: ChargeObject = {
      id: newId.charge(),
      object: 'charge',
      amount,
      amount_captured: succeeded ? amount : 0,
      amount_refunded: 0,
      balance_transaction: null,
      // Required by Stripe's published charge schema; the checkout page collects no details.
      billing_details: {
        address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
        email: null,
        name: null,
        phone: null,
        tax_id: null,
      },
      captured: succeeded,
      created,
      currency,
      customer: null,
      description: null,
      disputed: false,
      failure_code: null,
      failure_message: null,
      livemode: false,
      metadata: {},
      paid: succeeded,
      payment_intent: intent.id,
      payment_method: paymentMethod,
      receipt_email: null,
      receipt_url: null,
      refunded: false,
      status: succeeded ? 'succeeded' : 'pending',
    };
    intent.latest_charge = charge.id;
    this.intents.set(intent.id, intent);
    this.charges.set(charge.id, charge);
    return { intent, charge };
  }
}

function money(minor: number, currency: string): string {
  return `${(minor / 100).toFixed(2)} ${currency.toUpperCase()}`;
}
