/** The payment state machine as a pure rule: Stripe's current state decides, the event only names the case. */
import { isHandledEvent, transitionsFor } from '../src/domain/payment.rules';

const complete = (paymentStatus: string) => ({ session: { status: 'complete', paymentStatus } });

describe('transitionsFor', () => {
  it('pays a pending payment only when Stripe says the session is paid', () => {
    expect(transitionsFor('pending', 'checkout.session.completed', complete('paid'))).toEqual(['paid']);
    expect(transitionsFor('pending', 'checkout.session.completed', complete('no_payment_required'))).toEqual([
      'paid',
    ]);
    expect(transitionsFor('pending', 'checkout.session.completed', complete('unpaid'))).toEqual([]);
    expect(transitionsFor('pending', 'checkout.session.async_payment_succeeded', complete('unpaid'))).toEqual(
      [],
    );
    // Whatever the event, a paid session makes the payment paid (a reordered or late event catches up).
    expect(transitionsFor('pending', 'checkout.session.expired', complete('paid'))).toEqual(['paid']);
  });

  it('fails a pending payment only on async_payment_failed for a completed, unpaid session', () => {
    expect(transitionsFor('pending', 'checkout.session.async_payment_failed', complete('unpaid'))).toEqual([
      'failed',
    ]);
    expect(transitionsFor('pending', 'checkout.session.async_payment_failed', complete('paid'))).toEqual([
      'paid',
    ]);
    expect(
      transitionsFor('pending', 'checkout.session.async_payment_failed', {
        session: { status: 'open', paymentStatus: 'unpaid' },
      }),
    ).toEqual([]);
  });

  it('expires a pending payment only when the session is expired', () => {
    expect(
      transitionsFor('pending', 'checkout.session.expired', {
        session: { status: 'expired', paymentStatus: 'unpaid' },
      }),
    ).toEqual(['expired']);
    expect(
      transitionsFor('pending', 'checkout.session.expired', {
        session: { status: 'open', paymentStatus: 'unpaid' },
      }),
    ).toEqual([]);
  });

  it('never moves a payment backwards: failed, expired and refunded are final, paid only goes to refunded', () => {
    for (const status of ['failed', 'expired', 'refunded'] as const) {
      expect(transitionsFor(status, 'checkout.session.completed', complete('paid'))).toEqual([]);
      expect(transitionsFor(status, 'charge.refunded', { charge: { refunded: true } })).toEqual([]);
    }
    expect(
      transitionsFor('paid', 'checkout.session.expired', {
        session: { status: 'expired', paymentStatus: 'unpaid' },
      }),
    ).toEqual([]);
    expect(transitionsFor('paid', 'checkout.session.async_payment_failed', complete('unpaid'))).toEqual([]);
  });

  it('refunds a paid payment on a whole refund only, catching up on a payment the refund overtook', () => {
    expect(transitionsFor('paid', 'charge.refunded', { charge: { refunded: true } })).toEqual(['refunded']);
    expect(transitionsFor('paid', 'charge.refunded', { charge: { refunded: false } })).toEqual([]);
    expect(
      transitionsFor('pending', 'charge.refunded', { charge: { refunded: true }, ...complete('paid') }),
    ).toEqual(['paid', 'refunded']);
    expect(transitionsFor('pending', 'charge.refunded', { charge: { refunded: true } })).toEqual([]);
  });
});

describe('isHandledEvent', () => {
  it('handles the checkout session events and charge.refunded, nothing else', () => {
    for (const type of [
      'checkout.session.completed',
      'checkout.session.async_payment_succeeded',
      'checkout.session.async_payment_failed',
      'checkout.session.expired',
      'charge.refunded',
    ]) {
      expect(isHandledEvent(type)).toBe(true);
    }
    for (const type of ['refund.created', 'customer.created', 'payment_intent.succeeded', ''])
      expect(isHandledEvent(type)).toBe(false);
  });
});
