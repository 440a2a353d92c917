import { z } from 'zod';
import { env, serviceEnv } from '@atelier/kit';

export const trainerConfigSchema = serviceEnv.extend({
  GRPC_PORT: env.port(50053),
  METRICS_PORT: env.port(9103),
  BILLING_ADDR: z.string().min(1),
  IMAGER_ADDR: z.string().min(1),
  REPLICATE_API_TOKEN: z.string().min(1),
  /** Points the official client at the Replicate sandbox (must end in /v1); unset in production. */
  REPLICATE_BASE_URL: z.url().optional(),
  /** Unset → fetched from GET /v1/webhooks/default/secret at boot. */
  REPLICATE_WEBHOOK_SECRET: z.string().optional(),
  /** Where Replicate sends webhooks: the gateway's public /api/v1/webhooks/replicate. */
  PUBLIC_WEBHOOK_URL: z.url(),
  REPLICATE_OWNER: z.string().min(1).default('atelier'),
  REPLICATE_TRAINER_MODEL: z.string().default('ostris/flux-dev-lora-trainer'),
  REPLICATE_TRAINER_VERSION: z.string().default('26dce37af90b9d997eeb970d92e47de3064d46c300504ae376c75bef6a9022d2'),
  /** Input names of the trainer model: JSON map of our names to its names. */
  REPLICATE_TRAINER_INPUTS: z
    .string()
    .default('{"images":"input_images","trigger_word":"trigger_word","steps":"steps"}')
    .transform((s, ctx) => {
      try {
        return z.object({ images: z.string(), trigger_word: z.string(), steps: z.string().optional(), class: z.string().optional() }).parse(JSON.parse(s));
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object with images and trigger_word keys' });
        return z.NEVER;
      }
    }),
  TRAINING_STEPS: z.coerce.number().int().positive().default(1000),
  TRAINING_TIMEOUT_MS: env.ms(2 * 3600 * 1000),
  RECONCILE_INTERVAL_MS: env.ms(5_000),
  TRAINING_PRICE_PER_SECOND_MICROS: z.coerce.number().int().nonnegative().default(1_220),
});
export type TrainerConfig = z.infer<typeof trainerConfigSchema>;
