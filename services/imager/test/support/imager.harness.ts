/** A real imager gRPC server on a free port against the jest stack's bucket, and what its tests need
 * around it: a client, direct access to the bucket to check what is (not) there, and upload helpers. */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { AppError, createGrpcClient, loadConfig, type GrpcClient, type RunningService } from '@atelier/kit';
import { imager } from '@atelier/protos';
import { imagerConfigSchema, startImager, type ImagerConfig } from '../../src';

export type ImagerClient = GrpcClient<typeof imager.ImagerServiceService>;

export interface TestImager {
  service: RunningService;
  client: ImagerClient;
  config: ImagerConfig;
  /** Counter value of atelier_grpc_server_handled_total for one method, summed over codes. */
  handled(method: string): Promise<number>;
  /** atelier_transfer_bytes_total{direction}. */
  transferBytes(direction: 'dataset' | 'output'): Promise<number>;
  stop(): Promise<void>;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is not set: run the tests through jest (its global setup starts the stack)`);
  return value;
}

export function stackEnv(): Record<string, string> {
  return {
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    S3_ENDPOINT: required('S3_ENDPOINT'),
    S3_BUCKET: required('S3_BUCKET'),
    S3_REGION: process.env.S3_REGION ?? 'us-east-1',
    S3_ACCESS_KEY_ID: required('S3_ACCESS_KEY_ID'),
    S3_SECRET_ACCESS_KEY: required('S3_SECRET_ACCESS_KEY'),
    GRPC_PORT: '0',
    METRICS_PORT: '0',
    HEALTH_CHECK_INTERVAL_MS: '100',
    SHUTDOWN_GRACE_MS: '2000',
  };
}

export async function startTestImager(env: Record<string, string> = {}): Promise<TestImager> {
  const config = loadConfig(imagerConfigSchema, { ...stackEnv(), ...env });
  const service = await startImager(config);
  const client = createGrpcClient(imager.ImagerServiceService, service.address, { timeoutMs: 60_000 });
  const scrape = async (): Promise<string> =>
    (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
  const sum = (text: string, name: string, labels: RegExp): number =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) && labels.test(line))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return {
    service,
    client,
    config,
    handled: async (method) =>
      sum(await scrape(), 'atelier_grpc_server_handled_total', new RegExp(`method="${method}"`)),
    transferBytes: async (direction) =>
      sum(await scrape(), 'atelier_transfer_bytes_total', new RegExp(`direction="${direction}"`)),
    async stop() {
      client.close();
      await service.stop();
    },
  };
}

/** The bucket as the tests see it, straight to the stack's server (never through a test proxy). */
export function testBucket() {
  const bucket = required('S3_BUCKET');
  const s3 = new S3Client({
    endpoint: required('S3_ENDPOINT'),
    region: process.env.S3_REGION ?? 'us-east-1',
    credentials: {
      accessKeyId: required('S3_ACCESS_KEY_ID'),
      secretAccessKey: required('S3_SECRET_ACCESS_KEY'),
    },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    bucket,
    s3,
    async head(key: string): Promise<{ bytes: number; contentType?: string } | null> {
      try {
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { bytes: head.ContentLength ?? 0, contentType: head.ContentType };
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
          return null;
        throw err;
      }
    },
    async get(key: string): Promise<Buffer> {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },
    async list(prefix: string): Promise<string[]> {
      const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (res.Contents ?? []).map((o) => o.Key!).sort();
    },
    async put(key: string, body: Buffer, contentType: string): Promise<void> {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
    },
    async remove(key: string): Promise<void> {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
    close: () => s3.destroy(),
  };
}
export type TestBucket = ReturnType<typeof testBucket>;

export function stackS3Address(): { host: string; port: number } {
  const url = new URL(required('S3_ENDPOINT'));
  return { host: url.hostname, port: Number(url.port) };
}

export interface UploadFile {
  name: string;
  bytes: Buffer;
  contentType?: string;
}

export interface PackHeader {
  accountId: string;
  datasetId: string;
  minImages?: number;
  maxImages?: number;
}

export type PackStream = ReturnType<ImagerClient['packTrainingImages']>;

/** Sends one file as the gateway does: a file_start, then chunks of at most 64 KiB. */
export async function sendFile(
  stream: PackStream,
  index: number,
  file: UploadFile,
  chunkBytes = 64 * 1024,
): Promise<void> {
  await stream.write({
    fileStart: { index, filename: file.name, contentType: file.contentType ?? 'image/jpeg' },
  });
  for (let at = 0; at < file.bytes.length; at += chunkBytes) {
    await stream.write({ chunk: file.bytes.subarray(at, at + chunkBytes) });
  }
}

/** A whole PackTrainingImages call; a write refused because the server already answered is fine,
 * the answer (or its error) comes from end(). */
export async function pack(client: ImagerClient, header: PackHeader, files: UploadFile[]) {
  const stream = client.packTrainingImages({ timeoutMs: 60_000 });
  try {
    await stream.write({ header: { minImages: 0, maxImages: 0, ...header } });
    for (const [index, file] of files.entries()) await sendFile(stream, index, file);
    await stream.write({ end: { files: files.length } });
  } catch {
    // reported by end()
  }
  return stream.end();
}

/** The AppError a call failed with (with the gRPC status code it arrived as). */
export async function failure(promise: Promise<unknown>): Promise<AppError & { grpcCode: number }> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err as AppError & { grpcCode: number };
    throw err;
  }
  throw new Error('expected the call to fail');
}
