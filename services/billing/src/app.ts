import {
  createLogger,
  createMetrics,
  createPool,
  createRedis,
  implement,
  pingDatabase,
  serve,
  type RunningService,
} from '@atelier/kit';
import { billing } from '@atelier/protos';
import type { BillingConfig } from './config';
import { AccountRepository } from './repositories/account.repository';
import { ApiKeyRepository } from './repositories/api-key.repository';
import { PlanRepository } from './repositories/plan.repository';
import { AccountService } from './domain/account.service';
import { PlanService } from './domain/plan.service';
import { billingHandlers } from './grpc/billing.handlers';

export const BILLING_SERVICE_NAME = 'atelier.billing.v1.BillingService';

/** Wires billing by hand: config → pools → repositories → domain → handlers → server. */
export async function startBilling(config: BillingConfig): Promise<RunningService> {
  const logger = createLogger('billing', config.LOG_LEVEL);
  const metrics = createMetrics('billing');
  const db = createPool(config.DATABASE_URL);
  const redis = createRedis(config.REDIS_URL);

  const accounts = new AccountService(new AccountRepository(db), new ApiKeyRepository(db));
  const plans = new PlanService(new PlanRepository(db));

  return serve({
    logger,
    metrics,
    serviceNames: [BILLING_SERVICE_NAME],
    services: [implement(billing.BillingServiceService, billingHandlers({ accounts, plans }), { logger, metrics })],
    host: config.GRPC_HOST,
    port: config.GRPC_PORT,
    metricsPort: config.METRICS_PORT,
    readiness: async () => {
      await pingDatabase(db);
      await redis.ping();
    },
    graceMs: config.SHUTDOWN_GRACE_MS,
    close: [() => db.end(), () => redis.quit().catch(() => redis.disconnect())],
  });
}
