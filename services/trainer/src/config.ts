import { z } from 'zod';
import { env, outboxEnv, serviceEnv } from '@atelier/kit';

export const trainerConfigSchema = serviceEnv.extend({
  ...outboxEnv,
  GRPC_PORT: env.port(50053),
  METRICS_PORT: env.port(9103),
  BILLING_ADDR: z.string().min(1),
  /** Deleting a version's prompts (inferencer) and objects (imager). */
  INFERENCER_ADDR: z.string().min(1),
  IMAGER_ADDR: z.string().min(1),
  /** Deadline of the deletion jobs' calls to inferencer and imager (a version's outputs may be many objects). */
  DELETION_CALL_TIMEOUT_MS: env.ms(60_000),
  /** A training zip is deleted from the bucket this many days after its training ended, whatever the outcome. */
  DATASET_RETENTION_DAYS: z.coerce.number().nonnegative().default(7),
  /** Pause between two passes of each deletion loop (versions, accounts, training zips' retention). */
  DELETION_INTERVAL_MS: env.ms(10_000),
  /** Deletion rows claimed per pass, and how many of them are worked at once. */
  DELETION_BATCH: z.coerce.number().int().positive().default(10),
  DELETION_CONCURRENCY: z.coerce.number().int().positive().default(2),
  /** A claimed deletion is left to its replica this long; one that died is taken over after it. */
  DELETION_LEASE_MS: env.ms(5 * 60_000),
  /** First retry of a failed deletion; doubles per attempt up to DELETION_RETRY_MAX_MS. Deletions are retried until done. */
  DELETION_RETRY_BASE_MS: env.ms(30_000),
  DELETION_RETRY_MAX_MS: env.ms(3600_000),
  /** Deadline of trainer's own calls to billing (the reconciler's, and cleanups that outlive their caller). */
  BILLING_TIMEOUT_MS: env.ms(5_000),
  /**
   * How long a failed start's cleanup waits for imager to delete its dataset (short: the caller's
   * answer waits for it); the deletion jobs' imager calls take DELETION_CALL_TIMEOUT_MS.
   */
  IMAGER_TIMEOUT_MS: env.ms(5_000),
  /** The longest a TrainVersion upload may stream photos to imager; the caller's deadline is usually sooner. */
  UPLOAD_TIMEOUT_MS: env.ms(10 * 60_000),
  REPLICATE_API_TOKEN: z.string().min(1),
  /** Points the official client at the Replicate sandbox (must end in /v1); unset in production. */
  REPLICATE_BASE_URL: z.url().optional(),
  /** Per Replicate request. */
  REPLICATE_TIMEOUT_MS: env.ms(15_000),
  /** Unset → fetched from GET /v1/webhooks/default/secret when the first webhook arrives. */
  REPLICATE_WEBHOOK_SECRET: z.string().optional(),
  /** Where Replicate sends webhooks: the gateway's public /api/v1/webhooks/replicate. */
  PUBLIC_WEBHOOK_URL: z.url(),
  /** Owner of the destination models (the account or organisation of REPLICATE_API_TOKEN). */
  REPLICATE_OWNER: z.string().min(1).default('atelier'),
  /** Hardware named when a destination model is created; Replicate runs LoRA fine-tunes on the base model's. */
  REPLICATE_MODEL_HARDWARE: z.string().min(1).default('gpu-t4'),
  REPLICATE_TRAINER_MODEL: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*$/, 'must be owner/name')
    .default('ostris/flux-dev-lora-trainer'),
  REPLICATE_TRAINER_VERSION: z
    .string()
    .min(1)
    .default('26dce37af90b9d997eeb970d92e47de3064d46c300504ae376c75bef6a9022d2'),
  /** Input names of the trainer model: JSON map of our names to its names. */
  REPLICATE_TRAINER_INPUTS: z
    .string()
    .default('{"images":"input_images","trigger_word":"trigger_word","steps":"steps"}')
    .transform((s, ctx) => {
      try {
        return z
          .object({
            images: z.string().min(1),
            trigger_word: z.string().min(1),
            steps: z.string().optional(),
            class: z.string().optional(),
          })
          .parse(JSON.parse(s));
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object with images and trigger_word keys' });
        return z.NEVER;
      }
    }),
  TRAINING_STEPS: z.coerce.number().int().positive().default(1000),
  /** A training not finished this long after it was accepted is failed ('timed out') and canceled at Replicate. */
  TRAINING_TIMEOUT_MS: env.ms(2 * 3600 * 1000),
  /** How often the reconciler looks for due versions; also the shortest gap between two checks of one version. */
  RECONCILE_INTERVAL_MS: env.ms(5_000),
  /** The longest gap between two checks of one version (the gap grows with the training's age). */
  RECONCILE_MAX_BACKOFF_MS: env.ms(300_000),
  /** Versions claimed per reconciler pass, and how many of them are checked at once. */
  RECONCILE_BATCH: z.coerce.number().int().positive().default(25),
  RECONCILE_CONCURRENCY: z.coerce.number().int().positive().default(4),
  /**
   * A version row whose training was never created this long after insert belongs to a
   * start that died half-way: the reconciler deletes it and releases the payment. Must be longer
   * than any start takes from its row's insert (after the photos are stored) to the training's create.
   */
  START_GRACE_MS: env.ms(15 * 60 * 1000),
  /** A request's callback_url may be http or a loopback/private/link-local address (development and tests only). */
  WEBHOOK_ALLOW_PRIVATE: env.bool(false),
  /** Trainings an account may have running at once when the gateway passes no tier limit (the standard tier's). */
  MAX_RUNNING_TRAININGS_PER_ACCOUNT: z.coerce.number().int().positive().default(2),
  /** Replicate's price of the trainer's hardware per second of predict_time, in micro-units of the billing currency (for cost estimates). */
  TRAINING_PRICE_PER_SECOND_MICROS: z.coerce.number().int().nonnegative().default(1_220),
});
export type TrainerConfig = z.infer<typeof trainerConfigSchema>;
