import { AppError, type Metrics } from '@atelier/kit';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { StripeClient } from './clients/stripe.client';
import type { StripeEventService } from './domain/stripe-event.service';
import type { PaymentRepositories, Store } from './repositories';
import type { PaymentRow } from './repositories/payment.repository';

/**
 * Billing's metrics, recorded around the domain instead of inside it: the store is observed
 * (payment rows that change status, ledger rows appended), the Stripe client and the Stripe
 * event handler are wrapped. What a transaction did is counted only once it commits, so a
 * rolled-back transaction counts nothing. app.ts wires each wrapper with one line.
 */
export function billingMetrics(metrics: Metrics) {
  const registers = [metrics.registry];
  return {
    ...metrics.business,
    registry: metrics.registry,
    stripeEvents: new Counter({
      name: 'atelier_stripe_events_total',
      help: 'Stripe webhook events by type and outcome (applied, ignored, rejected, error)',
      labelNames: ['type', 'outcome'] as const,
      registers,
    }),
    stripeRequests: new Counter({
      name: 'atelier_stripe_requests_total',
      help: 'Stripe API calls by operation and outcome (ok, error)',
      labelNames: ['operation', 'outcome'] as const,
      registers,
    }),
    stripeDuration: new Histogram({
      name: 'atelier_stripe_request_duration_seconds',
      help: 'Stripe API call latency',
      labelNames: ['operation'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
  };
}
export type BillingMetrics = ReturnType<typeof billingMetrics>;

type Emit = (record: () => void) => void;

/** A payment row that moved to `status`: counted by status, and its revenue once paid. */
function paymentMoved(m: BillingMetrics, row: PaymentRow | undefined): void {
  if (!row) return;
  m.payments.inc({ status: row.status });
  if (row.status === 'paid') m.revenue.inc({ currency: row.currency }, row.amount);
}

/** The repositories with their status changes and ledger appends reported to `emit`. */
function observedRepositories(
  repos: PaymentRepositories,
  m: BillingMetrics,
  emit: Emit,
): PaymentRepositories {
  const payments = Object.create(repos.payments) as PaymentRepositories['payments'];
  const track =
    <A extends unknown[], R extends PaymentRow | undefined>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const row = await fn(...args);
      emit(() => paymentMoved(m, row));
      return row;
    };
  payments.insert = track(repos.payments.insert.bind(repos.payments));
  payments.markPaid = track(repos.payments.markPaid.bind(repos.payments));
  payments.close = track(repos.payments.close.bind(repos.payments));
  payments.markRefunded = track(repos.payments.markRefunded.bind(repos.payments));

  const ledger = Object.create(repos.ledger) as PaymentRepositories['ledger'];
  ledger.append = async (entry) => {
    await repos.ledger.append(entry);
    const moved = Math.abs(entry.grantedDelta ?? 0) + Math.abs(entry.usedDelta ?? 0);
    emit(() => m.credits.inc({ reason: entry.reason }, moved));
  };
  return { ...repos, payments, ledger };
}

/** The store, counting what each committed transaction (or single statement) changed. */
export function observeStore(store: Store, m: BillingMetrics): Store {
  return {
    repos: observedRepositories(store.repos, m, (record) => record()),
    async transaction(fn) {
      const pending: Array<() => void> = [];
      const result = await store.transaction((repos) =>
        fn(observedRepositories(repos, m, (record) => pending.push(record))),
      );
      for (const record of pending) record();
      return result;
    },
  };
}

/** Stripe API calls timed and counted by method; verifying a signature is local and not a call. */
export function observeStripe(client: StripeClient, m: BillingMetrics): StripeClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (
        typeof value !== 'function' ||
        typeof prop !== 'string' ||
        prop === 'verifyEvent' ||
        prop.startsWith('is')
      )
        return value;
      return async (...args: unknown[]) => {
        const end = m.stripeDuration.startTimer({ operation: prop });
        try {
          const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          m.stripeRequests.inc({ operation: prop, outcome: 'ok' });
          return result;
        } catch (err) {
          m.stripeRequests.inc({ operation: prop, outcome: 'error' });
          throw err;
        } finally {
          end();
        }
      };
    },
  });
}

/** Stripe webhook deliveries counted by outcome; a bad signature is `rejected`. */
export function observeStripeEvents(events: StripeEventService, m: BillingMetrics): StripeEventService {
  const observed = Object.create(events) as StripeEventService;
  observed.handle = async (payload, signature) => {
    try {
      const outcome = await events.handle(payload, signature);
      const result = outcome.applied ? 'applied' : 'ignored';
      m.stripeEvents.inc({ type: outcome.type, outcome: result });
      m.webhooks.inc({ source: 'stripe', outcome: result });
      return outcome;
    } catch (err) {
      const rejected = err instanceof AppError && err.code === 'invalid_signature';
      m.stripeEvents.inc({ type: 'unknown', outcome: rejected ? 'rejected' : 'error' });
      m.webhooks.inc({ source: 'stripe', outcome: rejected ? 'rejected' : 'error' });
      throw err;
    }
  };
  return observed;
}

/** Credits held by reservations older than a prompt can run: a stuck release shows here. */
export function watchReservations(store: Store, m: BillingMetrics): void {
  new Gauge({
    name: 'atelier_credit_reservations_oldest_open_seconds',
    help: 'Age of the oldest open credit reservation (0 when none is open)',
    registers: [m.registry],
    async collect() {
      // While Postgres does not answer the last value stays: atelier_dependency_up says why.
      const age = await store.repos.reservations.oldestOpenAgeSeconds().catch(() => undefined);
      if (age !== undefined) this.set(age);
    },
  });
}
