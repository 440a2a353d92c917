import Stripe from 'stripe';
import { AppError, Errors } from '@atelier/kit';
import type {
  ChargeFacts,
  CheckoutSessionInput,
  PaymentProvider,
  PromotionCodeFacts,
  SessionFacts,
  VerifiedEvent,
} from '../domain/ports';

/**
 * The part of Stripe billing uses, behind the official client. Callers get plain facts, never
 * Stripe objects, and failures as our own errors: Stripe unreachable or 5xx → `unavailable`
 * (503, and a webhook answered 503 is retried by Stripe), a timeout → `timeout` (504).
 */

export interface StripeClientConfig {
  secretKey: string;
  webhookSecret: string;
  /** Base URL of the Stripe sandbox; unset in production. */
  apiUrl?: string;
  /** Per attempt; the client retries twice more on connection errors, 409 and 5xx. */
  timeoutMs: number;
  webhookToleranceS: number;
}

const isTimeout = (err: Stripe.errors.StripeError) => {
  const detail = err.detail as { code?: string } | undefined;
  return detail?.code === 'ETIMEDOUT' || /timeout/i.test(err.message);
};

/** A Stripe failure as the error our callers should see. 4xx stay Stripe errors: they are bugs. */
function stripeFailure(err: unknown): unknown {
  if (err instanceof AppError) return err;
  if (err instanceof Stripe.errors.StripeConnectionError)
    return isTimeout(err) ? Errors.timeout('stripe') : Errors.unavailable('stripe', err);
  if (err instanceof Stripe.errors.StripeRateLimitError) return Errors.unavailable('stripe', err);
  if (err instanceof Stripe.errors.StripeError && (err.statusCode ?? 0) >= 500)
    return Errors.unavailable('stripe', err);
  return err;
}

const isMissing = (err: unknown) =>
  err instanceof Stripe.errors.StripeInvalidRequestError &&
  (err.statusCode === 404 || err.code === 'resource_missing');

const idOf = (ref: string | { id: string } | null | undefined): string | null =>
  ref == null ? null : typeof ref === 'string' ? ref : ref.id;

export class StripeClient implements PaymentProvider {
  private readonly stripe: Stripe;

  constructor(private readonly config: StripeClientConfig) {
    const target = config.apiUrl ? new URL(config.apiUrl) : undefined;
    this.stripe = new Stripe(config.secretKey, {
      apiVersion: Stripe.API_VERSION,
      maxNetworkRetries: 2,
      timeout: config.timeoutMs,
      telemetry: false,
      ...(target
        ? {
            host: target.hostname,
            port: target.port || (target.protocol === 'https:' ? 443 : 80),
            protocol: target.protocol === 'https:' ? 'https' : 'http',
          }
        : {}),
    });
  }

  async createCheckoutSession(input: CheckoutSessionInput): Promise<SessionFacts> {
    const metadata = { payment_id: input.paymentId, account_id: input.accountId, plan_id: input.planId };
    try {
      const session = await this.stripe.checkout.sessions.create(
        {
          mode: 'payment',
          line_items: [
            {
              quantity: 1,
              price_data: {
                currency: input.currency,
                unit_amount: input.amount,
                product_data: {
                  name: input.productName,
                  // Stripe refuses an empty string for an optional field.
                  ...(input.productDescription ? { description: input.productDescription } : {}),
                },
              },
            },
          ],
          client_reference_id: input.paymentId,
          metadata,
          // The charge and its refunds point at the payment intent: its metadata leads back to us.
          payment_intent_data: { metadata },
          success_url: input.successUrl,
          cancel_url: input.cancelUrl,
          ...(input.promotionCodeId ? { discounts: [{ promotion_code: input.promotionCodeId }] } : {}),
        },
        { idempotencyKey: input.idempotencyKey },
      );
      return toSessionFacts(session);
    } catch (err) {
      throw stripeFailure(err);
    }
  }

  /** True when Stripe refused the session because of its discount (the code died since we looked). */
  isDiscountRefusal(err: unknown): boolean {
    return (
      err instanceof Stripe.errors.StripeInvalidRequestError && (err.param ?? '').startsWith('discounts')
    );
  }

  /** The session as Stripe has it now, or undefined when Stripe has no such session. */
  async retrieveSession(id: string): Promise<SessionFacts | undefined> {
    try {
      return toSessionFacts(await this.stripe.checkout.sessions.retrieve(id));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw stripeFailure(err);
    }
  }

  /** The charge with its payment intent expanded, or undefined when Stripe has no such charge. */
  async retrieveCharge(id: string): Promise<ChargeFacts | undefined> {
    try {
      const charge = await this.stripe.charges.retrieve(id, { expand: ['payment_intent'] });
      const intent = typeof charge.payment_intent === 'object' ? charge.payment_intent : null;
      return {
        id: charge.id,
        refunded: charge.refunded,
        amountRefunded: charge.amount_refunded,
        paymentIntentId: idOf(charge.payment_intent),
        paymentId: intent?.metadata?.payment_id ?? null,
      };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw stripeFailure(err);
    }
  }

  /**
   * Looks a promotion code up by id (`promo_…`) or by its customer-facing code. Unknown codes are
   * not an error: they are simply not usable.
   */
  async checkPromotionCode(idOrCode: string, currency: string): Promise<PromotionCodeFacts> {
    let code: Stripe.PromotionCode | undefined;
    try {
      if (idOrCode.startsWith('promo_')) {
        code = await this.stripe.promotionCodes.retrieve(idOrCode, { expand: ['promotion.coupon'] });
      } else {
        const list = await this.stripe.promotionCodes.list({
          code: idOrCode,
          limit: 1,
          expand: ['data.promotion.coupon'],
        });
        code = list.data[0];
      }
    } catch (err) {
      if (isMissing(err)) return { id: idOrCode, usable: false, reason: 'unknown promotion code' };
      // A code Stripe cannot even look up (characters it refuses) is as unusable as an unknown one.
      if (err instanceof Stripe.errors.StripeInvalidRequestError)
        return { id: idOrCode, usable: false, reason: err.message };
      throw stripeFailure(err);
    }
    if (!code) return { id: idOrCode, usable: false, reason: 'unknown promotion code' };
    const coupon = typeof code.promotion?.coupon === 'object' ? code.promotion.coupon : null;
    const now = Math.floor(Date.now() / 1000);
    let reason: string | undefined;
    if (!code.active) reason = 'inactive';
    else if (code.expires_at !== null && code.expires_at <= now) reason = 'expired';
    else if (code.max_redemptions !== null && code.times_redeemed >= code.max_redemptions) reason = 'used up';
    else if (!coupon) reason = 'not a coupon promotion';
    else if (!coupon.valid) reason = 'coupon no longer valid';
    else if (coupon.amount_off !== null && coupon.currency !== currency)
      reason = `coupon is in ${coupon.currency}`;
    return reason ? { id: code.id, usable: false, reason } : { id: code.id, usable: true };
  }

  /** Best effort: a session we could not record must not stay payable. */
  async expireSession(id: string): Promise<void> {
    try {
      await this.stripe.checkout.sessions.expire(id);
    } catch (err) {
      throw stripeFailure(err);
    }
  }

  /** Verifies `Stripe-Signature` on the raw bytes, within the configured tolerance. */
  verifyEvent(payload: Buffer, signature: string): VerifiedEvent {
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(
        payload,
        signature,
        this.config.webhookSecret,
        this.config.webhookToleranceS,
      );
    } catch (err) {
      if (err instanceof Stripe.errors.StripeSignatureVerificationError)
        throw Errors.invalidSignature(err.message);
      // A correctly signed body that is not an event (not JSON) is still not something we accept.
      throw Errors.invalidSignature(
        `not a Stripe event: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const object = (event.data as { object?: { id?: unknown } } | undefined)?.object;
    return { id: event.id, type: event.type, objectId: typeof object?.id === 'string' ? object.id : null };
  }
}

function toSessionFacts(session: Stripe.Checkout.Session): SessionFacts {
  return {
    id: session.id,
    status: session.status,
    paymentStatus: session.payment_status,
    paymentIntentId: idOf(session.payment_intent),
    url: session.url,
    expiresAt: new Date(session.expires_at * 1000),
    amountTotal: session.amount_total ?? 0,
    paymentId: session.metadata?.payment_id ?? session.client_reference_id ?? null,
  };
}
