import { createLogger, createMetrics, createPool, createRedis, implement, pingDatabase, serve, type RunningService } from '@atelier/kit';
import { imager } from '@atelier/protos';
import type { ImagerConfig } from './config';
import { imagerHandlers } from './grpc/imager.handlers';

export const IMAGER_SERVICE_NAME = 'atelier.imager.v1.ImagerService';

/** Wires imager by hand: config → pools → repositories → domain → handlers → server. */
export async function startImager(config: ImagerConfig): Promise<RunningService> {
  const logger = createLogger('imager', config.LOG_LEVEL);
  const metrics = createMetrics('imager');
  const db = createPool(config.DATABASE_URL);
  const redis = createRedis(config.REDIS_URL);

  return serve({
    logger,
    metrics,
    serviceNames: [IMAGER_SERVICE_NAME],
    services: [implement(imager.ImagerServiceService, imagerHandlers(), { logger, metrics })],
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
