import type { PaymentStatus } from '../repositories/payment.repository';

/**
 * Which way a payment moves, decided from what Stripe says *now* (re-read when the event arrives),
 * not from the event's snapshot: a late or reordered event can then only move a payment forward,
 * along pending → paid | failed | expired and paid → refunded. Pure, so it is tested on its own.
 */
export type Transition = 'paid' | 'failed' | 'expired' | 'refunded';

export const SESSION_EVENTS = new Set([
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'checkout.session.expired',
]);
export const REFUND_EVENTS = new Set(['charge.refunded']);

export function isHandledEvent(type: string): boolean {
  return SESSION_EVENTS.has(type) || REFUND_EVENTS.has(type);
}

export interface StripeState {
  /** Strings as Stripe sends them: `open`/`complete`/`expired`, `paid`/`unpaid`/`no_payment_required`. */
  session?: { status: string | null; paymentStatus: string };
  /** Only a whole refund counts: a partial refund leaves the payment paid and its credits alone. */
  charge?: { refunded: boolean };
}

export function transitionsFor(current: PaymentStatus, eventType: string, state: StripeState): Transition[] {
  const out: Transition[] = [];
  let status = current;
  const session = state.session;
  if (status === 'pending' && session) {
    const paid =
      session.status === 'complete' &&
      (session.paymentStatus === 'paid' || session.paymentStatus === 'no_payment_required');
    if (paid) out.push((status = 'paid'));
    // A completed session still unpaid is either waiting for a delayed method or, when Stripe
    // says so with this event, failed. The event type alone is not trusted: the session must agree.
    else if (eventType === 'checkout.session.async_payment_failed' && session.status === 'complete')
      out.push((status = 'failed'));
    else if (session.status === 'expired') out.push((status = 'expired'));
  }
  if (status === 'paid' && state.charge?.refunded) out.push('refunded');
  return out;
}

/** What trainer reports about the training an init payment paid for. */
export type TrainingOutcome = 'running' | 'ready' | 'failed';

export interface TrainingDecision {
  /** The payment's credits (as bought) go to the version. */
  grant: boolean;
  /** The payment is unbound from the version and can train again. */
  giveBack: boolean;
  /** The training may go on: false once the payment no longer pays for it (refunded). */
  keepTraining: boolean;
}

/**
 * The one rule of what a training's outcome means for its payment: credits only for a ready
 * version (so no credit of a version that never became ready is ever usable), the payment back
 * for one that will never be ready, and no training without a payment that still pays for it.
 * `bound` says whether the payment still pays for the reported version.
 */
export function decideTrainingOutcome(
  payment: { status: PaymentStatus; bound: boolean },
  outcome: TrainingOutcome,
): TrainingDecision {
  const paid = payment.status === 'paid' && payment.bound;
  return {
    grant: paid && outcome === 'ready',
    giveBack: paid && outcome === 'failed',
    keepTraining: paid,
  };
}
