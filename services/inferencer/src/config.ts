import { z } from 'zod';
import { env, serviceEnv } from '@atelier/kit';

export const inferencerConfigSchema = serviceEnv.extend({
  GRPC_PORT: env.port(50054),
  METRICS_PORT: env.port(9104),
  BILLING_ADDR: z.string().min(1),
  IMAGER_ADDR: z.string().min(1),
  TRAINER_ADDR: z.string().min(1),
  REPLICATE_API_TOKEN: z.string().min(1),
  REPLICATE_BASE_URL: z.url().optional(),
  REPLICATE_WEBHOOK_SECRET: z.string().optional(),
  PUBLIC_WEBHOOK_URL: z.url(),
  PREDICTION_TIMEOUT_MS: env.ms(10 * 60 * 1000),
  RECONCILE_INTERVAL_MS: env.ms(3_000),
  PREDICTION_PRICE_PER_SECOND_MICROS: z.coerce.number().int().nonnegative().default(1_400),
});
export type InferencerConfig = z.infer<typeof inferencerConfigSchema>;
