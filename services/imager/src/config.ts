import { z } from 'zod';
import { env, serviceEnv } from '@atelier/kit';
import { MAX_PRESIGN_TTL_S } from './domain/url.service';

const ttl = (fallback: number) => z.coerce.number().int().positive().max(MAX_PRESIGN_TTL_S).default(fallback);
const count = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/**
 * Imager has no database schema and keeps no state of its own: the bucket is its only dependency,
 * so DATABASE_URL is not read (it may still be set in a shared environment).
 */
export const imagerConfigSchema = serviceEnv
  .omit({ DATABASE_URL: true })
  .extend({
    GRPC_PORT: env.port(50052),
    METRICS_PORT: env.port(9102),
    /** Unset: AWS S3, its endpoint chosen by S3_REGION. */
    S3_ENDPOINT: z.url().optional(),
    /** Bucket in the path rather than the host name. Unset: path-style exactly when S3_ENDPOINT
     * is set (MinIO needs it; AWS S3 prefers virtual-hosted style; R2 takes both). */
    S3_FORCE_PATH_STYLE: z
      .enum(['true', 'false', '1', '0'])
      .optional()
      .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1')),
    /** Host presigned URLs are signed for, when others reach the bucket by another address than
     * this service does (e.g. http://minio:9000 inside compose, a public host for Replicate). */
    S3_PRESIGN_ENDPOINT: z.url().optional(),
    S3_REGION: z.string().default('us-east-1'),
    S3_BUCKET: z.string().min(3),
    S3_ACCESS_KEY_ID: z.string().min(1),
    S3_SECRET_ACCESS_KEY: z.string().min(1),
    /** Attempts per bucket request (the SDK's own retry with backoff on 5xx and network errors). */
    S3_MAX_ATTEMPTS: count(3),
    S3_CONNECT_TIMEOUT_MS: env.ms(3_000),
    /** Longest one bucket request may take until its answer, a 5 MiB part's upload included. */
    S3_REQUEST_TIMEOUT_MS: env.ms(30_000),
    /** A public bucket or CDN in front of it for generated images; unset → presigned URLs.
     * Datasets (customers' photos) are always presigned. */
    PUBLIC_ASSET_BASE_URL: z.url().optional(),
    /** Dataset URLs must outlive the longest training (trainer's TRAINING_TIMEOUT_MS, 2 h by default). */
    DATASET_URL_TTL_S: ttl(6 * 3600),
    IMAGE_URL_TTL_S: ttl(3600),
    PHOTO_MAX_FILE_BYTES: count(20 * 1024 * 1024),
    PHOTO_MAX_TOTAL_BYTES: count(300 * 1024 * 1024),
    PHOTO_MIN_SIDE: count(512),
    /** Photos are scaled down to fit this long side (the trainers work at 512–1024 px). */
    PHOTO_MAX_SIDE: count(2048),
    /** Pixels a photo's stored grid may have: decompression bombs are refused before decoding. */
    PHOTO_MAX_PIXELS: count(40_000_000),
    /** The one memory budget for decoding, shared by every upload at once: a photo waits until
     * its estimated decode fits; one that would need more than all of it is refused (too_large). */
    IMAGER_DECODE_BUDGET_MIB: count(512),
    /** Used when the pack header leaves min_images/max_images at 0. */
    PHOTO_MIN_COUNT: count(5),
    PHOTO_MAX_COUNT: count(30),
    /** No plan may ask for more photos than this in one dataset. */
    PHOTO_MAX_COUNT_CEILING: count(200),
    /** Photos decoded at once per upload (libvips uses several threads per image already). */
    PHOTO_CHECK_CONCURRENCY: count(2),
    /** Outputs downloaded and stored at once per TransferOutputs call. */
    TRANSFER_CONCURRENCY: count(4),
    TRANSFER_MAX_OUTPUTS: count(16),
    TRANSFER_MAX_BYTES: count(50 * 1024 * 1024),
    /** Attempts per output on transient failures (5xx, 408, 429, network errors, timeouts). */
    TRANSFER_ATTEMPTS: count(3),
    TRANSFER_RETRY_BASE_MS: env.ms(250),
    /** One download attempt, headers to last byte. With TRANSFER_ATTEMPTS, keep the worst case
     * under the inferencer's TRANSFER_TIMEOUT_MS (60 s): 3 × 15 s plus backoff. */
    TRANSFER_ATTEMPT_TIMEOUT_MS: env.ms(15_000),
    /** Keys per SignUrls call. */
    SIGN_MAX_KEYS: count(1000),
  })
  .refine((c) => c.PHOTO_MIN_SIDE <= c.PHOTO_MAX_SIDE, {
    message: 'PHOTO_MIN_SIDE ≤ PHOTO_MAX_SIDE',
    path: ['PHOTO_MAX_SIDE'],
  })
  .refine((c) => c.PHOTO_MIN_COUNT <= c.PHOTO_MAX_COUNT && c.PHOTO_MAX_COUNT <= c.PHOTO_MAX_COUNT_CEILING, {
    message: 'PHOTO_MIN_COUNT ≤ PHOTO_MAX_COUNT ≤ PHOTO_MAX_COUNT_CEILING',
    path: ['PHOTO_MAX_COUNT'],
  });
export type ImagerConfig = z.infer<typeof imagerConfigSchema>;
