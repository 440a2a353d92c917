/**
 * What billing's domain needs from the systems around it, typed here so the domain imports no
 * adapter: the Stripe client (clients/stripe.client.ts) implements PaymentProvider.
 */

export interface CheckoutSessionInput {
  paymentId: string;
  accountId: string;
  planId: string;
  productName: string;
  productDescription: string;
  amount: number;
  currency: string;
  promotionCodeId?: string;
  successUrl: string;
  cancelUrl: string;
  idempotencyKey: string;
}

/** A Checkout Session as billing needs to know it. */
export interface SessionFacts {
  id: string;
  /** `open`, `complete` or `expired` (a string: Stripe may add values). */
  status: string | null;
  /** `paid` or `no_payment_required` once the money is ours; `unpaid` while it is not. */
  paymentStatus: string;
  paymentIntentId: string | null;
  url: string | null;
  expiresAt: Date;
  amountTotal: number;
  /** `metadata.payment_id`, which CreatePayment sets to our payment id. */
  paymentId: string | null;
}

export interface ChargeFacts {
  id: string;
  /** True only once the whole charge is refunded. */
  refunded: boolean;
  amountRefunded: number;
  paymentIntentId: string | null;
  /** `metadata.payment_id` of the charge's payment intent (CreatePayment sets it). */
  paymentId: string | null;
}

export interface PromotionCodeFacts {
  id: string;
  /** Active, not expired, not used up, its coupon valid and in the right currency. */
  usable: boolean;
  /** Why not, for logs. */
  reason?: string;
}

/** A verified webhook event: id, type and the id of the object it is about. */
export interface VerifiedEvent {
  id: string;
  type: string;
  objectId: string | null;
}

/** What billing needs from Stripe (the official client behind it, or the sandbox). */
export interface PaymentProvider {
  checkPromotionCode(idOrCode: string, currency: string): Promise<PromotionCodeFacts>;
  createCheckoutSession(input: CheckoutSessionInput): Promise<SessionFacts>;
  /** Stripe refused the session because of its discount. */
  isDiscountRefusal(err: unknown): boolean;
  expireSession(id: string): Promise<void>;
  retrieveSession(id: string): Promise<SessionFacts | undefined>;
  retrieveCharge(id: string): Promise<ChargeFacts | undefined>;
  verifyEvent(payload: Buffer, signature: string): VerifiedEvent;
}
