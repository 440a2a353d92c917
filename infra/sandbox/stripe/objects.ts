/**
 * The Stripe objects the sandbox serves. Each type is a `Pick` of the installed `stripe` package's
 * own type, so every field the sandbox emits is checked against what the client declares.
 */
import type Stripe from 'stripe';

export type SessionObject = Pick<
  Stripe.Checkout.Session,
  | 'id'
  | 'object'
  | 'allow_promotion_codes'
  | 'amount_subtotal'
  | 'amount_total'
  | 'automatic_tax'
  | 'custom_fields'
  | 'custom_text'
  | 'shipping_options'
  | 'cancel_url'
  | 'client_reference_id'
  | 'client_secret'
  | 'created'
  | 'currency'
  | 'customer'
  | 'customer_creation'
  | 'customer_details'
  | 'customer_email'
  | 'discounts'
  | 'expires_at'
  | 'invoice'
  | 'livemode'
  | 'locale'
  | 'metadata'
  | 'mode'
  | 'payment_intent'
  | 'payment_link'
  | 'payment_method_types'
  | 'payment_status'
  | 'recovered_from'
  | 'setup_intent'
  | 'status'
  | 'submit_type'
  | 'subscription'
  | 'success_url'
  | 'total_details'
  | 'ui_mode'
  | 'url'
>;

export type PaymentIntentObject = Pick<
  Stripe.PaymentIntent,
  | 'id'
  | 'object'
  | 'amount'
  | 'amount_capturable'
  | 'amount_received'
  | 'canceled_at'
  | 'capture_method'
  | 'client_secret'
  | 'confirmation_method'
  | 'created'
  | 'currency'
  | 'customer'
  | 'description'
  | 'last_payment_error'
  | 'latest_charge'
  | 'livemode'
  | 'metadata'
  | 'payment_method'
  | 'payment_method_types'
  | 'status'
>;

export type ChargeObject = Pick<
  Stripe.Charge,
  | 'id'
  | 'object'
  | 'amount'
  | 'amount_captured'
  | 'amount_refunded'
  | 'balance_transaction'
  | 'billing_details'
  | 'captured'
  | 'created'
  | 'currency'
  | 'customer'
  | 'description'
  | 'disputed'
  | 'failure_code'
  | 'failure_message'
  | 'livemode'
  | 'metadata'
  | 'paid'
  | 'payment_intent'
  | 'payment_method'
  | 'receipt_email'
  | 'receipt_url'
  | 'refunded'
  | 'status'
>;

export type RefundObject = Pick<
  Stripe.Refund,
  | 'id'
  | 'object'
  | 'amount'
  | 'balance_transaction'
  | 'charge'
  | 'created'
  | 'currency'
  | 'metadata'
  | 'payment_intent'
  | 'reason'
  | 'receipt_number'
  | 'status'
>;

export type CouponObject = Stripe.Coupon;
export type PromotionCodeObject = Stripe.PromotionCode;

/** An event as Stripe sends it; `type` is any string so tests can send types Atelier ignores. */
export interface EventObject extends Omit<Stripe.EventBase, 'type' | 'data'> {
  type: string;
  data: { object: unknown };
}

export interface LineItem {
  name: string;
  unitAmount: number;
  quantity: number;
  currency: string;
}

/** What the sandbox keeps beside the session object: what the session object does not carry. */
export interface SessionRecord {
  session: SessionObject;
  lineItems: LineItem[];
  promotionCodeId: string | null;
  couponId: string | null;
  paymentIntentMetadata: Record<string, string>;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
