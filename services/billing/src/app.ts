import {
  createClaimLoop,
  createLogger,
  newEvent,
  systemClock,
  toPaymentJson,
  toWebhookEndpointJson,
  type Clock,
  createMetrics,
  createPool,
  createStore,
  dependencyReadiness,
  implement,
  pingDatabase,
  serve,
  type RunningService,
} from '@atelier/kit';
import { billing } from '@atelier/protos';
import type { BillingConfig } from './config';
import { StripeClient } from './clients/stripe.client';
import { createTrainerDeletion } from './clients/trainer.client';
import { paymentRepositories } from './repositories';
import { PlanRepository } from './repositories/plan.repository';
import { AccountService } from './domain/account.service';
import { CreditService } from './domain/credit.service';
import { PaymentService } from './domain/payment.service';
import { TierService } from './domain/tier.service';
import { PlanService } from './domain/plan.service';
import { StripeEventService } from './domain/stripe-event.service';
import { UsageService } from './domain/usage.service';
import { WebhookService } from './domain/webhook.service';
import { webhookDeliveryJob } from './domain/webhook-delivery.job';
import { reservationSweepJob } from './domain/reservation-sweep.job';
import { createWebhookClient } from './clients/webhook.client';
import { billingHandlers } from './grpc/billing.handlers';
import { toPayment, toWebhookEndpoint } from './grpc/billing.mappers';
import {
  billingMetrics,
  observeStore,
  observeStripe,
  observeStripeEvents,
  watchReservations,
} from './metrics';

export const BILLING_SERVICE_NAME = 'atelier.billing.v1.BillingService';

/** Wires billing by hand: config → pools and clients → repositories → domain → handlers → server. */
export interface BillingSeams {
  /** Time for callbacks' schedule; tests advance it instead of sleeping through back-offs. */
  clock?: Clock;
}

export async function startBilling(config: BillingConfig, seams: BillingSeams = {}): Promise<RunningService> {
  const clock = seams.clock ?? systemClock;
  const logger = createLogger('billing', config.LOG_LEVEL);
  const metrics = createMetrics('billing');
  const measured = billingMetrics(metrics);
  const db = createPool(config.DATABASE_URL);
  const stripe = observeStripe(
    new StripeClient({
      secretKey: config.STRIPE_SECRET_KEY,
      webhookSecret: config.STRIPE_WEBHOOK_SECRET,
      apiUrl: config.STRIPE_API_URL,
      timeoutMs: config.STRIPE_TIMEOUT_MS,
      webhookToleranceS: config.STRIPE_WEBHOOK_TOLERANCE_S,
    }),
    measured,
  );
  const deletion = createTrainerDeletion(config.TRAINER_ADDR, {
    timeoutMs: config.TRAINER_TIMEOUT_MS,
    metrics,
  });

  const store = observeStore(createStore(db, paymentRepositories), measured);
  watchReservations(store, measured);
  const accounts = new AccountService(store, deletion);
  const plans = new PlanService(new PlanRepository(db));
  const credits = new CreditService(store);
  const payments = new PaymentService(
    store,
    plans,
    stripe,
    credits,
    { success: config.CHECKOUT_SUCCESS_URL, cancel: config.CHECKOUT_CANCEL_URL },
    logger,
  );
  const webhooks = new WebhookService(store, clock, {
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    rotationOverlapMs: config.WEBHOOK_SECRET_OVERLAP_MS,
  });
  const stripeEvents = observeStripeEvents(
    new StripeEventService(store, stripe, credits, logger, (repos, payment, type) =>
      webhooks.announce(
        repos,
        newEvent(payment.account_id, type, toPaymentJson(toPayment(payment)), null, clock.now()),
      ),
    ),
    measured,
  );
  const webhookClient = createWebhookClient({
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
  });
  const deliveries = createClaimLoop({
    ...webhookDeliveryJob(
      {
        store,
        clock,
        sender: webhookClient,
        webhooks,
        endpointView: (row) => toWebhookEndpointJson(toWebhookEndpoint(row)),
        logger,
        metrics: metrics.business,
      },
      {
        retry: {
          baseMs: config.WEBHOOK_RETRY_BASE_MS,
          maxDelayMs: config.WEBHOOK_RETRY_MAX_DELAY_MS,
          maxAgeMs: config.WEBHOOK_MAX_AGE_MS,
        },
        disableAfterMs: config.WEBHOOK_DISABLE_AFTER_MS,
        // An attempt takes at most its timeout; the rest is two short statements.
        leaseMs: config.WEBHOOK_TIMEOUT_MS * 3,
      },
    ),
    intervalMs: config.WEBHOOK_DELIVERY_INTERVAL_MS,
    batch: config.WEBHOOK_DELIVERY_BATCH,
    concurrency: config.WEBHOOK_DELIVERY_CONCURRENCY,
    logger,
    metrics,
  });
  const sweep = createClaimLoop({
    ...reservationSweepJob(
      { store, credits, logger },
      { maxAgeMs: config.RESERVATION_MAX_AGE_MS, leaseMs: 60_000 },
    ),
    intervalMs: config.RESERVATION_SWEEP_INTERVAL_MS,
    batch: 50,
    concurrency: 4,
    logger,
    metrics,
  });
  const usage = new UsageService(store);
  const tiers = new TierService(store.repos.payments, config.TIER_LIMITS);

  const running = await serve({
    logger,
    metrics,
    serviceNames: [BILLING_SERVICE_NAME],
    services: [
      implement(
        billing.BillingServiceService,
        billingHandlers({ accounts, plans, payments, stripeEvents, credits, usage, webhooks, tiers }),
        { logger, metrics },
      ),
    ],
    config,
    readiness: dependencyReadiness(metrics, { postgres: () => pingDatabase(db) }),
    close: [
      () => deliveries.stop(),
      () => sweep.stop(),
      () => webhookClient.close(),
      () => deletion.close(),
      () => db.end(),
    ],
  });
  deliveries.start();
  sweep.start();
  return running;
}
