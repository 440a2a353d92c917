import type { Logger } from '@atelier/kit';
import type { PaymentRepositories, Store } from '../repositories';
import type { PaymentRow } from '../repositories/payment.repository';
import type { CreditService } from './credit.service';
import type { ChargeFacts, PaymentProvider, SessionFacts } from './ports';
import {
  REFUND_EVENTS,
  SESSION_EVENTS,
  isHandledEvent,
  transitionsFor,
  type StripeState,
} from './payment.rules';

export interface EventOutcome {
  eventId: string;
  type: string;
  /** True when the event changed something; false for a redelivery, an ignored type or a no-op. */
  applied: boolean;
  /** The account of the payment it changed (its tier may have changed); empty when none. */
  accountId: string;
}

/** Announces a payment's change to the account's servers, on the transaction that makes it. */
export type AnnouncePayment = (
  repos: PaymentRepositories,
  payment: PaymentRow,
  type: 'payment.paid' | 'payment.refunded',
) => Promise<unknown>;

/** What Stripe says now about the payment an event concerns. */
interface Facts {
  paymentId: string | null;
  session?: SessionFacts;
  charge?: ChargeFacts;
}

/**
 * HandleStripeEvent. The signature is checked on the raw bytes; then Stripe is asked for the
 * current state of the session (or charge), and in ONE transaction the event id is recorded and
 * the payment moved forward to match that state. A redelivered id changes nothing; a database or
 * Stripe outage fails the whole call (UNAVAILABLE → non-2xx → Stripe retries) with nothing applied.
 */
export class StripeEventService {
  constructor(
    private readonly store: Store,
    private readonly stripe: PaymentProvider,
    private readonly credits: CreditService,
    private readonly logger: Logger,
    private readonly announce: AnnouncePayment,
  ) {}

  async handle(payload: Buffer, signature: string): Promise<EventOutcome> {
    const event = this.stripe.verifyEvent(payload, signature);
    const outcome: EventOutcome = { eventId: event.id, type: event.type, applied: false, accountId: '' };
    if (!isHandledEvent(event.type) || !event.objectId) return outcome;
    // Cheap check first, so redeliveries cost no Stripe calls; the insert below is the real guard.
    if (await this.store.repos.events.exists(event.id)) return outcome;

    const facts = await this.readFacts(event.type, event.objectId);
    let accountId = '';
    const applied = await this.store.transaction(async (repos) => {
      if (!(await repos.events.insert(event.id, event.type, facts.paymentId))) return false;
      if (!facts.paymentId) {
        this.logger.warn(
          { event_id: event.id, type: event.type, object_id: event.objectId },
          'Stripe event for no payment of ours',
        );
        return false;
      }
      const payment = await repos.payments.lock(facts.paymentId);
      if (!payment) return false;
      accountId = payment.account_id;
      return this.apply(repos, payment, event.type, facts);
    });
    return { ...outcome, applied, accountId: applied ? accountId : '' };
  }

  private async readFacts(type: string, objectId: string): Promise<Facts> {
    const repos = this.store.repos;
    if (SESSION_EVENTS.has(type)) {
      const session = await this.stripe.retrieveSession(objectId);
      // Unknown to Stripe itself: nothing we could ever apply. Recorded, so it is not asked again.
      if (!session) return { paymentId: null };
      const payment = await repos.payments.findBySession(session.id);
      if (payment && session.paymentId && session.paymentId !== payment.id) {
        this.logger.error(
          { session_id: session.id, payment_id: payment.id, metadata_payment_id: session.paymentId },
          'session metadata disagrees with our record',
        );
        return { paymentId: null };
      }
      return { paymentId: payment?.id ?? null, session };
    }
    if (REFUND_EVENTS.has(type)) {
      const charge = await this.stripe.retrieveCharge(objectId);
      if (!charge) return { paymentId: null };
      const payment =
        (charge.paymentIntentId
          ? await repos.payments.findByPaymentIntent(charge.paymentIntentId)
          : undefined) ?? (charge.paymentId ? await repos.payments.find(charge.paymentId) : undefined);
      if (!payment) return { paymentId: null };
      // The refund overtook the payment's own events: learn from the session whether it was paid,
      // so the payment can go pending → paid → refunded here and credits are granted then revoked.
      const session =
        payment.status === 'pending' && payment.stripe_session_id
          ? await this.stripe.retrieveSession(payment.stripe_session_id)
          : undefined;
      return { paymentId: payment.id, charge, session };
    }
    return { paymentId: null };
  }

  private async apply(
    repos: PaymentRepositories,
    payment: PaymentRow,
    type: string,
    facts: Facts,
  ): Promise<boolean> {
    const state: StripeState = {
      session: facts.session && { status: facts.session.status, paymentStatus: facts.session.paymentStatus },
      charge: facts.charge && { refunded: facts.charge.refunded },
    };
    const transitions = transitionsFor(payment.status, type, state);
    let current = payment;
    for (const transition of transitions) {
      switch (transition) {
        case 'paid': {
          const paid = await repos.payments.markPaid(
            current.id,
            facts.session?.paymentIntentId ?? facts.charge?.paymentIntentId ?? null,
          );
          if (!paid) return false;
          current = paid;
          // An add-on grants its credits the moment it is paid, in the same transaction. Nothing
          // when its version was deleted after the session opened; billing issues no refunds, so
          // an operator must.
          if (!paid.is_init && !(await this.credits.grantInTransaction(repos, paid)))
            this.logger.error(
              { payment_id: paid.id, version_id: paid.version_id },
              'add-on paid for a deleted version grants nothing: refund it',
            );
          await this.announce(repos, paid, 'payment.paid');
          break;
        }
        case 'failed':
        case 'expired': {
          const closed = await repos.payments.close(current.id, transition);
          if (!closed) return false;
          current = closed;
          break;
        }
        case 'refunded': {
          const refunded = await repos.payments.markRefunded(current.id);
          if (!refunded) return false;
          current = refunded;
          const revoked = await this.credits.revokeInTransaction(repos, current);
          this.logger.info({ payment_id: current.id, revoked }, 'payment refunded');
          await this.announce(repos, current, 'payment.refunded');
          break;
        }
      }
    }
    if (transitions.length)
      this.logger.info(
        { payment_id: payment.id, from: payment.status, to: current.status, event: type },
        'payment moved',
      );
    return transitions.length > 0;
  }
}
