import {
  createLogger,
  createMetrics,
  dependencyReadiness,
  implement,
  serve,
  type RunningService,
} from '@atelier/kit';
import { imager } from '@atelier/protos';
import { BucketClient } from './clients/bucket.client';
import { SharpPhotoCodec } from './clients/image.client';
import { createStoredZip } from './clients/zip.client';
import type { ImagerConfig } from './config';
import { DatasetPacker, DecodeBudget, OutputTransfer, UrlSigner } from './domain';
import { imagerHandlers } from './grpc/imager.handlers';

export const IMAGER_SERVICE_NAME = 'atelier.imager.v1.ImagerService';

/**
 * Wires imager by hand: config → bucket client, image codec, zip writer → packer (with the one
 * decode budget every upload shares), transfer, URL signer → handlers → server.
 * Imager keeps no state of its own (no database, no Redis): it is ready when the bucket answers.
 */
export async function startImager(config: ImagerConfig): Promise<RunningService> {
  const logger = createLogger('imager', config.LOG_LEVEL);
  const metrics = createMetrics('imager');
  const bucket = new BucketClient({
    endpoint: config.S3_ENDPOINT,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    presignEndpoint: config.S3_PRESIGN_ENDPOINT,
    region: config.S3_REGION,
    bucket: config.S3_BUCKET,
    accessKeyId: config.S3_ACCESS_KEY_ID,
    secretAccessKey: config.S3_SECRET_ACCESS_KEY,
    maxAttempts: config.S3_MAX_ATTEMPTS,
    connectTimeoutMs: config.S3_CONNECT_TIMEOUT_MS,
    requestTimeoutMs: config.S3_REQUEST_TIMEOUT_MS,
    publicBaseUrl: config.PUBLIC_ASSET_BASE_URL,
  });
  const urls = new UrlSigner(bucket, {
    datasetTtlS: config.DATASET_URL_TTL_S,
    imageTtlS: config.IMAGE_URL_TTL_S,
    maxKeys: config.SIGN_MAX_KEYS,
  });
  const packer = new DatasetPacker({
    bucket,
    urls,
    photos: {
      codec: new SharpPhotoCodec(),
      budget: new DecodeBudget(config.IMAGER_DECODE_BUDGET_MIB * 1024 * 1024),
    },
    createZip: () => createStoredZip(),
    logger,
    metrics,
    concurrency: config.PHOTO_CHECK_CONCURRENCY,
    limits: {
      minSide: config.PHOTO_MIN_SIDE,
      maxSide: config.PHOTO_MAX_SIDE,
      maxPixels: config.PHOTO_MAX_PIXELS,
      maxFileBytes: config.PHOTO_MAX_FILE_BYTES,
      maxTotalBytes: config.PHOTO_MAX_TOTAL_BYTES,
      defaultMinCount: config.PHOTO_MIN_COUNT,
      defaultMaxCount: config.PHOTO_MAX_COUNT,
      maxCountCeiling: config.PHOTO_MAX_COUNT_CEILING,
    },
  });
  const transfer = new OutputTransfer({
    bucket,
    logger,
    metrics,
    options: {
      concurrency: config.TRANSFER_CONCURRENCY,
      maxOutputs: config.TRANSFER_MAX_OUTPUTS,
      maxBytes: config.TRANSFER_MAX_BYTES,
      attempts: config.TRANSFER_ATTEMPTS,
      retryBaseMs: config.TRANSFER_RETRY_BASE_MS,
      attemptTimeoutMs: config.TRANSFER_ATTEMPT_TIMEOUT_MS,
    },
  });

  return serve({
    logger,
    metrics,
    serviceNames: [IMAGER_SERVICE_NAME],
    services: [
      implement(imager.ImagerServiceService, imagerHandlers({ packer, transfer, urls, bucket }), {
        logger,
        metrics,
      }),
    ],
    config,
    readiness: dependencyReadiness(metrics, { bucket: () => bucket.ping() }),
    close: [() => bucket.close()],
  });
}
