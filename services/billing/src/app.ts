import {
  createLogger,
  createMetrics,
  createPool,
  createStore,
  implement,
  pingDatabase,
  serve,
  type RunningService,
} from '@atelier/kit';
import { billing } from '@atelier/protos';
import type { BillingConfig } from './config';
import { StripeClient } from './clients/stripe.client';
import { createTrainerVersions } from './clients/trainer.client';
import { paymentRepositories } from './repositories';
import { AccountRepository } from './repositories/account.repository';
import { ApiKeyRepository } from './repositories/api-key.repository';
import { PlanRepository } from './repositories/plan.repository';
import { AccountService } from './domain/account.service';
import { CreditService } from './domain/credit.service';
import { PaymentService } from './domain/payment.service';
import { PlanService } from './domain/plan.service';
import { StripeEventService } from './domain/stripe-event.service';
import { UsageService } from './domain/usage.service';
import { billingHandlers } from './grpc/billing.handlers';

export const BILLING_SERVICE_NAME = 'atelier.billing.v1.BillingService';

/** Wires billing by hand: config → pools and clients → repositories → domain → handlers → server. */
export async function startBilling(config: BillingConfig): Promise<RunningService> {
  const logger = createLogger('billing', config.LOG_LEVEL);
  const metrics = createMetrics('billing');
  const db = createPool(config.DATABASE_URL);
  const stripe = new StripeClient({
    secretKey: config.STRIPE_SECRET_KEY,
    webhookSecret: config.STRIPE_WEBHOOK_SECRET,
    apiUrl: config.STRIPE_API_URL,
    timeoutMs: config.STRIPE_TIMEOUT_MS,
    webhookToleranceS: config.STRIPE_WEBHOOK_TOLERANCE_S,
  });
  const versions = createTrainerVersions(config.TRAINER_ADDR, {
    timeoutMs: config.TRAINER_TIMEOUT_MS,
    metrics,
  });

  const store = createStore(db, paymentRepositories);
  const accounts = new AccountService(new AccountRepository(db), new ApiKeyRepository(db));
  const plans = new PlanService(new PlanRepository(db));
  const credits = new CreditService(store, plans);
  const payments = new PaymentService(
    store,
    plans,
    stripe,
    versions,
    { success: config.CHECKOUT_SUCCESS_URL, cancel: config.CHECKOUT_CANCEL_URL },
    logger,
  );
  const stripeEvents = new StripeEventService(store, stripe, credits, logger);
  const usage = new UsageService(store);

  return serve({
    logger,
    metrics,
    serviceNames: [BILLING_SERVICE_NAME],
    services: [
      implement(
        billing.BillingServiceService,
        billingHandlers({ accounts, plans, payments, stripeEvents, credits, usage }),
        { logger, metrics },
      ),
    ],
    config,
    readiness: () => pingDatabase(db),
    close: [() => versions.close(), () => db.end()],
  });
}
