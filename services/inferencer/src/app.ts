import { createLogger, createMetrics, createPool, createRedis, implement, pingDatabase, serve, type RunningService } from '@atelier/kit';
import { inferencer } from '@atelier/protos';
import type { InferencerConfig } from './config';
import { inferencerHandlers } from './grpc/inferencer.handlers';

export const INFERENCER_SERVICE_NAME = 'atelier.inferencer.v1.InferencerService';

/** Wires inferencer by hand: config → pools → repositories → domain → handlers → server. */
export async function startInferencer(config: InferencerConfig): Promise<RunningService> {
  const logger = createLogger('inferencer', config.LOG_LEVEL);
  const metrics = createMetrics('inferencer');
  const db = createPool(config.DATABASE_URL);
  const redis = createRedis(config.REDIS_URL);

  return serve({
    logger,
    metrics,
    serviceNames: [INFERENCER_SERVICE_NAME],
    services: [implement(inferencer.InferencerServiceService, inferencerHandlers(), { logger, metrics })],
    host: config.GRPC_HOST,
    port: config.GRPC_PORT,
    metricsPort: config.METRICS_PORT,
    readiness: async () => {
      await pingDatabase(db);
      await redis.ping();
    },
    readinessIntervalMs: config.HEALTH_CHECK_INTERVAL_MS,
    graceMs: config.SHUTDOWN_GRACE_MS,
    close: [() => db.end(), () => redis.quit().catch(() => redis.disconnect())],
  });
}
