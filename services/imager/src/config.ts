import { z } from 'zod';
import { env, serviceEnv } from '@atelier/kit';

export const imagerConfigSchema = serviceEnv.extend({
  GRPC_PORT: env.port(50052),
  METRICS_PORT: env.port(9102),
  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_BUCKET: z.string().min(3),
  S3_ACCESS_KEY_ID: z.string().min(1),
  S3_SECRET_ACCESS_KEY: z.string().min(1),
  /** A public bucket or CDN in front of it; unset → presigned URLs. */
  PUBLIC_ASSET_BASE_URL: z.url().optional(),
  /** Dataset URLs must outlive the longest training. */
  DATASET_URL_TTL_S: z.coerce.number().int().positive().default(6 * 3600),
  IMAGE_URL_TTL_S: z.coerce.number().int().positive().default(3600),
  PHOTO_MAX_FILE_BYTES: z.coerce.number().int().positive().default(20 * 1024 * 1024),
  PHOTO_MAX_TOTAL_BYTES: z.coerce.number().int().positive().default(300 * 1024 * 1024),
  PHOTO_MIN_SIDE: z.coerce.number().int().positive().default(512),
});
export type ImagerConfig = z.infer<typeof imagerConfigSchema>;
