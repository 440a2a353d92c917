import { z } from 'zod';
import { env, serviceEnv } from '@atelier/kit';

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
  /** Deadline of billing's calls to trainer (GetVersion for add-on payments). */
  TRAINER_TIMEOUT_MS: env.ms(5_000),
});
export type BillingConfig = z.infer<typeof billingConfigSchema>;
