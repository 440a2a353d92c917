import { z } from 'zod';
import { env, serviceEnv } from '@atelier/kit';
import { tierLimitsOverride } from './domain/tier.rules';

export const billingConfigSchema = serviceEnv.extend({
  GRPC_PORT: env.port(50051),
  METRICS_PORT: env.port(9101),
  TRAINER_ADDR: z.string().min(1),
  STRIPE_SECRET_KEY: z.string().min(1),
  STRIPE_WEBHOOK_SECRET: z.string().min(1),
  /** Points the official client at the Stripe sandbox, e.g. http://127.0.0.1:12111; unset in production. */
  STRIPE_API_URL: z.url().optional(),
  CHECKOUT_SUCCESS_URL: z.url().default('http://127.0.0.1:8080/checkout/success?payment_id={PAYMENT_ID}'),
  CHECKOUT_CANCEL_URL: z.url().default('http://127.0.0.1:8080/checkout/cancel?payment_id={PAYMENT_ID}'),
  STRIPE_WEBHOOK_TOLERANCE_S: z.coerce.number().int().positive().default(300),
  /** Per attempt; the client retries twice more (same idempotency key): 3 × 2.5 s + backoff stays under the gateway's 10 s deadline. */
  STRIPE_TIMEOUT_MS: env.ms(2_500),
  /** Deadline of billing's calls to trainer (DeleteAccountData). */
  TRAINER_TIMEOUT_MS: env.ms(5_000),

  /** Callbacks: http and loopback/private/link-local destinations allowed (development and tests only). */
  WEBHOOK_ALLOW_PRIVATE: env.bool(false),
  /** Per attempt, headers included. */
  WEBHOOK_TIMEOUT_MS: env.ms(10_000),
  /** Delay after the first failed attempt; doubles with each failure up to the max delay (with jitter). */
  WEBHOOK_RETRY_BASE_MS: env.ms(5_000),
  WEBHOOK_RETRY_MAX_DELAY_MS: env.ms(6 * 3600_000),
  /** An event is attempted for this long after it happened, then its delivery is failed. */
  WEBHOOK_MAX_AGE_MS: env.ms(3 * 24 * 3600_000),
  /** An endpoint failing (no 2xx) for this long is disabled and the account told. */
  WEBHOOK_DISABLE_AFTER_MS: env.ms(3 * 24 * 3600_000),
  /** How long a rotated-out signing secret keeps signing. */
  WEBHOOK_SECRET_OVERLAP_MS: env.ms(24 * 3600_000),
  WEBHOOK_DELIVERY_INTERVAL_MS: env.ms(250),
  WEBHOOK_DELIVERY_BATCH: z.coerce.number().int().positive().default(50),
  WEBHOOK_DELIVERY_CONCURRENCY: z.coerce.number().int().positive().default(16),
  /** A credit reservation still open after this lost its owner and is released (far beyond a prompt's 10 min). */
  RESERVATION_MAX_AGE_MS: env.ms(24 * 3600_000),
  RESERVATION_SWEEP_INTERVAL_MS: env.ms(60_000),
  /** Overrides of the tiers' limits as JSON, e.g. {"free":{"writesPerMinute":20}}; unset = PRODUCT.md's. */
  TIER_LIMITS: tierLimitsOverride,
});
export type BillingConfig = z.infer<typeof billingConfigSchema>;
