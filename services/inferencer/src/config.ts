import { z } from 'zod';
import { env, outboxEnv, serviceEnv } from '@atelier/kit';

export const inferencerConfigSchema = serviceEnv.extend({
  ...outboxEnv,
  GRPC_PORT: env.port(50054),
  METRICS_PORT: env.port(9104),
  BILLING_ADDR: z.string().min(1),
  IMAGER_ADDR: z.string().min(1),
  TRAINER_ADDR: z.string().min(1),
  /** Deadline of calls to billing and trainer (the caller's deadline wins when it is sooner). */
  GRPC_TIMEOUT_MS: env.ms(10_000),
  /** Copying a prompt's outputs into the bucket downloads up to four images: it gets longer. */
  TRANSFER_TIMEOUT_MS: env.ms(60_000),
  REPLICATE_API_TOKEN: z.string().min(1),
  /** Points the official client at the Replicate sandbox (must end in /v1); unset in production. */
  REPLICATE_BASE_URL: z.url().optional(),
  /** Unset → fetched from GET /v1/webhooks/default/secret when the first webhook arrives. */
  REPLICATE_WEBHOOK_SECRET: z.string().optional(),
  REPLICATE_TIMEOUT_MS: env.ms(30_000),
  /** Where Replicate sends webhooks: the gateway's public /api/v1/webhooks/replicate. */
  PUBLIC_WEBHOOK_URL: z.url(),
  /** A request's callback_url may be http or a loopback/private/link-local address (development and tests only). */
  WEBHOOK_ALLOW_PRIVATE: env.bool(false),
  /** A prediction not finished this long after its creation is failed and its credits released. */
  PREDICTION_TIMEOUT_MS: env.ms(10 * 60 * 1000),
  /** How often the reconciler looks for due prompts. */
  RECONCILE_INTERVAL_MS: env.ms(3_000),
  /** How long after creation (and after each check) the reconciler asks Replicate about a prompt no webhook finished. */
  PREDICTION_CHECK_INTERVAL_MS: env.ms(30_000),
  /**
   * A prompt still without a Replicate prediction this long after it was created lost its
   * CreatePrompt (a crash between reserving and creating): the reconciler releases its credits.
   * Longer than any CreatePrompt can take (its Replicate and billing deadlines).
   */
  PREDICTION_CREATE_GRACE_MS: env.ms(2 * 60 * 1000),
  /** Prompts the reconciler claims per pass. */
  RECONCILE_BATCH: z.coerce.number().int().positive().default(20),
  /** Prompts of one pass checked at once: Replicate and imager see a bounded burst. */
  RECONCILE_CONCURRENCY: z.coerce.number().int().positive().default(5),
  /** Prompts an account may have running at once when the gateway does not pass its tier's limit. */
  MAX_RUNNING_PROMPTS_PER_ACCOUNT: z.coerce.number().int().positive().default(2),
  PREDICTION_PRICE_PER_SECOND_MICROS: z.coerce.number().int().nonnegative().default(1_400),
  /** A repeated identical offer or pack run (same account, same inputs) within this window returns the first run. */
  DUPLICATE_RUN_WINDOW_MS: env.ms(60_000),
});
export type InferencerConfig = z.infer<typeof inferencerConfigSchema>;
