import path from 'node:path';
import { z } from 'zod';
import { env } from '@atelier/kit';

export const gatewayConfigSchema = z.object({
  HTTP_PORT: env.port(8080),
  HTTP_HOST: z.string().default('127.0.0.1'),
  /** Prometheus scrapes /metrics here; the public port does not serve it. */
  METRICS_PORT: env.port(9100),
  LOG_LEVEL: env.logLevel(),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
  BILLING_ADDR: z.string().min(1),
  IMAGER_ADDR: z.string().min(1),
  TRAINER_ADDR: z.string().min(1),
  INFERENCER_ADDR: z.string().min(1),
  GRPC_TIMEOUT_MS: env.ms(10_000),
  /** Uploads stream for a while: their calls get a longer deadline. */
  UPLOAD_TIMEOUT_MS: env.ms(120_000),
  JSON_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024),
  UPLOAD_MAX_FILE_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 1024 * 1024),
  UPLOAD_MAX_FILES: z.coerce.number().int().positive().default(30),
  UPLOAD_MAX_TOTAL_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(300 * 1024 * 1024),
  WEBHOOK_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(10 * 1024 * 1024),
  AUTH_CACHE_MS: z.coerce.number().int().nonnegative().default(5_000),
  /** Failed API key checks per client address per window before 429 (guessing keys). */
  AUTH_FAILURES_PER_WINDOW: z.coerce.number().int().positive().default(20),
  AUTH_FAILURE_WINDOW_MS: env.ms(60_000),
  /** Replaces every tier's per-minute read and write budgets (load tests, tests); unset = the tiers'. */
  RATE_LIMIT_PER_WINDOW: z.coerce.number().int().positive().optional(),
  RATE_LIMIT_WINDOW_MS: env.ms(60_000),
  IDEMPOTENCY_TTL_S: z.coerce
    .number()
    .int()
    .positive()
    .default(24 * 3600),
  SHUTDOWN_GRACE_MS: env.ms(10_000),
  /** The built console (console/dist), served at /console; the default is this checkout's. */
  CONSOLE_DIR: z.string().default(path.resolve(__dirname, '..', '..', 'console', 'dist')),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
