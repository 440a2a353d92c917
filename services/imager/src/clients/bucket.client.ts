import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AppError, Errors } from '@atelier/kit';
import type { ObjectStore, SignedUrl, UploadOptions } from '../domain';

export interface BucketOptions {
  endpoint?: string;
  /** Bucket in the path (MinIO, s3rver) rather than in the host name (AWS S3). Unset: path-style
   * exactly when an endpoint is given, since S3-compatible servers expect it and AWS does not. */
  forcePathStyle?: boolean;
  /** Presigned URLs are signed for this endpoint instead of `endpoint` when set. */
  presignEndpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  maxAttempts: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** `PUBLIC_ASSET_BASE_URL`: objects are public under this base when set. */
  publicBaseUrl?: string;
}

export interface ObjectHead {
  bytes: number;
  contentType: string | undefined;
}

/** S3's smallest part: each part in flight is held in memory. */
const PART_BYTES = 5 * 1024 * 1024;

/**
 * The bucket, and nothing else: every read and write of objects goes through here. Errors leave as
 * AppError: a bucket that cannot be reached (refused, reset, 5xx) is `unavailable`, one that does
 * not answer in time `timeout`; anything else (403, a missing bucket) is a configuration problem
 * and stays an internal error.
 */
export class BucketClient implements ObjectStore {
  private readonly s3: S3Client;
  private readonly signer: S3Client;
  readonly bucket: string;
  private readonly publicBase: string | undefined;
  /** Whether the server answers ListObjectVersions; unknown until first asked. */
  private versioned: boolean | undefined;

  constructor(options: BucketOptions) {
    this.bucket = options.bucket;
    this.s3 = makeClient(options, options.endpoint);
    this.signer = options.presignEndpoint ? makeClient(options, options.presignEndpoint) : this.s3;
    this.publicBase = options.publicBaseUrl
      ? options.publicBaseUrl.endsWith('/')
        ? options.publicBaseUrl
        : `${options.publicBaseUrl}/`
      : undefined;
  }

  /**
   * Streams `body` into `key` with lib-storage (one PUT below one part, a multipart upload above).
   * The object is only created when `body` ends normally: destroying `body` makes this reject
   * without creating it (a multipart upload already begun is aborted), and the caller knows its
   * own reason better than the SDK's wording of it. Settles only when no request of the upload is
   * still running (it is never aborted from outside), so the caller may safely delete afterwards.
   */
  async upload(key: string, body: Readable, options: UploadOptions): Promise<void> {
    if (options.contentLength !== undefined) return this.put(key, body, options.contentLength, options);
    const upload = new Upload({
      client: this.s3,
      queueSize: options.queueSize ?? 2,
      partSize: PART_BYTES,
      leavePartsOnError: false,
      params: {
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: options.contentType,
      },
    });
    try {
      await upload.done();
    } catch (err) {
      throw bucketError(err);
    } finally {
      // A failed upload may leave the body half read: the producer must hear that nobody reads on.
      if (!body.readableEnded) body.destroy();
    }
  }

  /**
   * One PUT whose body streams while it is produced, for a body of known length: the object is
   * stored as soon as the last byte arrives, where lib-storage would first buffer it whole (up to
   * a part) and only then send it. A body that fails or ends short aborts the request, so nothing
   * is created (S3 stores a PUT only when all Content-Length bytes arrived). Not retried: a
   * streamed body cannot be sent twice.
   */
  private async put(
    key: string,
    body: Readable,
    contentLength: number,
    options: UploadOptions,
  ): Promise<void> {
    const abort = new AbortController();
    const onError = (err: Error): void => abort.abort(err);
    body.once('error', onError);
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: contentLength,
          ContentType: options.contentType,
        }),
        { abortSignal: abort.signal },
      );
    } catch (err) {
      throw bucketError(
        abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason : err,
      );
    } finally {
      body.off('error', onError);
      if (!body.readableEnded) body.destroy();
    }
  }

  /**
   * Removes every stored version of every object under `prefix` (only the object named `prefix`
   * when `exact`), delete markers included, and answers how many it removed. A plain DELETE on a
   * versioned bucket only hides an object behind a delete marker; deleting each version by its id
   * is what erases it. Servers without versioning (s3rver, R2) refuse ListObjectVersions: there a
   * listing of the objects and a DELETE of each is the whole story.
   */
  async purge(prefix: string, opts: { exact?: boolean } = {}): Promise<number> {
    const targets: Array<{ Key: string; VersionId?: string }> = [];
    const keep = (key: string | undefined): key is string =>
      key !== undefined && (!opts.exact || key === prefix);
    if (this.versioned !== false) {
      try {
        let keyMarker: string | undefined;
        let versionMarker: string | undefined;
        do {
          const page = await this.s3.send(
            new ListObjectVersionsCommand({
              Bucket: this.bucket,
              Prefix: prefix,
              KeyMarker: keyMarker,
              VersionIdMarker: versionMarker,
            }),
          );
          for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
            if (keep(v.Key)) targets.push({ Key: v.Key, VersionId: v.VersionId });
          }
          keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
          versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
        } while (keyMarker !== undefined);
        this.versioned = true;
      } catch (err) {
        if (!unsupported(err)) throw bucketError(err);
        this.versioned = false;
      }
    }
    if (this.versioned === false) {
      let token: string | undefined;
      do {
        const page = await this.call(() =>
          this.s3.send(
            new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
          ),
        );
        for (const o of page.Contents ?? []) if (keep(o.Key)) targets.push({ Key: o.Key });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    }
    // One DELETE per version: DeleteObjects needs Content-MD5, which S3-compatible servers check
    // unevenly, and a version's objects number in the tens.
    for (let i = 0; i < targets.length; i += 8) {
      await Promise.all(
        targets.slice(i, i + 8).map((t) =>
          this.call(() =>
            this.s3.send(
              new DeleteObjectCommand({
                Bucket: this.bucket,
                Key: t.Key,
                ...(t.VersionId && t.VersionId !== 'null' ? { VersionId: t.VersionId } : {}),
              }),
            ),
          ),
        ),
      );
    }
    return targets.length;
  }

  /** Deletes without ever throwing: for cleaning up after another failure. */
  async deleteQuietly(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch(() => undefined);
  }

  async head(key: string): Promise<ObjectHead | null> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { bytes: head.ContentLength ?? 0, contentType: head.ContentType };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw bucketError(err);
    }
  }

  /** Readiness: the bucket exists and our credentials reach it. */
  async ping(): Promise<void> {
    await this.call(() => this.s3.send(new HeadBucketCommand({ Bucket: this.bucket })));
  }

  /** A GET URL anyone holding it may use until `expiresAt`; signing is local, no request is made. */
  async presignGet(key: string, ttlSeconds: number, signedAt = new Date()): Promise<SignedUrl> {
    const expiresAt = new Date(signedAt.getTime() + ttlSeconds * 1000);
    const url = await getSignedUrl(this.signer, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: ttlSeconds,
      signingDate: signedAt,
    });
    return { url, expiresAt };
  }

  /** `PUBLIC_ASSET_BASE_URL + key`, or undefined when no public base is configured. */
  publicUrl(key: string): string | undefined {
    if (!this.publicBase) return undefined;
    return this.publicBase + key.split('/').map(encodeURIComponent).join('/');
  }

  close(): void {
    this.s3.destroy();
    if (this.signer !== this.s3) this.signer.destroy();
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw bucketError(err);
    }
  }
}

function makeClient(options: BucketOptions, endpoint: string | undefined): S3Client {
  return new S3Client({
    ...(endpoint ? { endpoint } : {}),
    region: options.region,
    credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
    // Without these, S3-compatible servers store a streamed PutObject with its aws-chunked
    // framing inside the object.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: options.maxAttempts,
    // Without throwOnRequestTimeout the SDK only logs a warning when requestTimeout passes and
    // keeps waiting: a bucket that accepts connections but never answers would hang every call.
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
]);

/**
 * Any failure of a bucket request as the AppError the caller should see. Duck-typed throughout:
 * socket errors can come from another realm (a worker, jest's sandbox) and fail `instanceof Error`.
 */
export function bucketError(err: unknown): AppError | Error {
  if (err instanceof AppError) return err;
  const code = errorCode(err);
  const { name, message } = (err ?? {}) as { name?: unknown; message?: unknown };
  // smithy names ECONNRESET/EPIPE "TimeoutError" too: the code says what really happened.
  if (code && UNREACHABLE_CODES.has(code)) return Errors.unavailable('bucket');
  if (code === 'ETIMEDOUT' || name === 'TimeoutError' || name === 'RequestTimeout')
    return Errors.timeout('bucket');
  const status = statusOf(err);
  if (status !== undefined && status >= 500) return Errors.unavailable('bucket');
  // No answer at all from the bucket: the SDK stamps $metadata on what its handler threw, and a
  // dropped connection reads "socket hang up", "aborted" or similar.
  const sdkError = typeof err === 'object' && err !== null && '$metadata' in err;
  if (
    status === undefined &&
    (sdkError ||
      (typeof message === 'string' && /socket hang up|connect|network|aborted|closed/i.test(message)))
  ) {
    return Errors.unavailable('bucket');
  }
  return err instanceof Error ? err : new Error(typeof message === 'string' ? message : String(err));
}

/** The server does not implement ListObjectVersions (s3rver: 405 MethodNotAllowed; others 501). */
function unsupported(err: unknown): boolean {
  const status = statusOf(err);
  const name = (err as { name?: unknown; Code?: unknown } | null)?.name;
  return status === 501 || status === 405 || name === 'NotImplemented' || name === 'MethodNotAllowed';
}

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof S3ServiceException) return err.$metadata.httpStatusCode;
  const meta = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  return meta?.httpStatusCode;
}
