import { createLogger, createMetrics, createPool, createRedis, implement, pingDatabase, serve, type RunningService } from '@atelier/kit';
import { trainer } from '@atelier/protos';
import type { TrainerConfig } from './config';
import { trainerHandlers } from './grpc/trainer.handlers';

export const TRAINER_SERVICE_NAME = 'atelier.trainer.v1.TrainerService';

/** Wires trainer by hand: config → pools → repositories → domain → handlers → server. */
export async function startTrainer(config: TrainerConfig): Promise<RunningService> {
  const logger = createLogger('trainer', config.LOG_LEVEL);
  const metrics = createMetrics('trainer');
  const db = createPool(config.DATABASE_URL);
  const redis = createRedis(config.REDIS_URL);

  return serve({
    logger,
    metrics,
    serviceNames: [TRAINER_SERVICE_NAME],
    services: [implement(trainer.TrainerServiceService, trainerHandlers(), { logger, metrics })],
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
