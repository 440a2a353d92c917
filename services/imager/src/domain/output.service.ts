import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError, backoffMs, Errors, retryAfterMs, type Logger, type Metrics } from '@atelier/kit';
import { OUTPUT_CONTENT_TYPES, OUTPUT_EXTENSIONS, readImageHeader } from './image.rules';
import { requireOutputPrefix } from './object.rules';
import type { ObjectStore } from './ports';

export interface StoredOutput {
  key: string;
  width: number;
  height: number;
  contentType: string;
  bytes: number;
}

export interface TransferOptions {
  /** Downloads running at once. */
  concurrency: number;
  maxOutputs: number;
  maxBytes: number;
  /** Attempts per output on transient failures. */
  attempts: number;
  retryBaseMs: number;
  attemptTimeoutMs: number;
}

export interface TransferDeps {
  bucket: ObjectStore;
  logger: Logger;
  metrics: Metrics;
  options: TransferOptions;
  /** Replaceable in tests; the global fetch otherwise. */
  fetch?: typeof fetch;
}

/** Where the frame header may be at the latest; held in memory until the size is known. */
const HEAD_MAX_BYTES = 1024 * 1024;
/** The longest Retry-After honoured between attempts. */
const MAX_RETRY_AFTER_MS = 5_000;
/** What a server may call a file whose type it does not know; the bytes decide then. */
const GENERIC_TYPES = new Set(['', 'application/octet-stream', 'binary/octet-stream']);

/** A failure worth another attempt: 5xx, 408, 425, 429, a network error or a timed-out attempt. */
class Transient extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

/**
 * TransferOutputs: copies a run's output files into the bucket, at `<key_prefix>/<n>.<ext>` with
 * n the 0-based position in `urls`, so a repeated call writes the same keys (it is idempotent and
 * the caller retries the whole call after a failure).
 *
 * All outputs are copied at once (at most `concurrency`). Each download is streamed straight into
 * the bucket: only its first bytes are held, until the image header has given type and size.
 * The type is sniffed from those bytes (PNG, JPEG or WebP) and must agree with the Content-Type
 * the source sent; the size is bounded by `maxBytes`.
 *
 * Failures: a transient one (see Transient) is retried with a short exponential backoff. When
 * one output fails for good, the others are stopped, every object this call may have written is
 * deleted and the call fails with:
 *   - not_found — the source answered 404, 410 or 403: the output is gone (Replicate deletes API
 *     outputs an hour after the run) and no retry will bring it back;
 *   - unsupported_media_type / payload_too_large — the file is not an image we keep;
 *   - unavailable / timeout — the source kept failing or the bucket is down: worth retrying later;
 *   - invalid_argument — a bad prefix or URL, or another 4xx from the source.
 */
export class OutputTransfer {
  private readonly fetch: typeof fetch;

  constructor(private readonly d: TransferDeps) {
    this.fetch = d.fetch ?? fetch;
  }

  async transfer(keyPrefix: string, urls: readonly string[], signal: AbortSignal): Promise<StoredOutput[]> {
    const prefix = requireOutputPrefix(keyPrefix);
    const { options } = this.d;
    if (urls.length > options.maxOutputs)
      throw Errors.invalid(`at most ${options.maxOutputs} urls per call, got ${urls.length}`);
    const sources = urls.map((url, i) => parseSource(url, i));
    if (sources.length === 0) return [];

    const stop = new AbortController();
    const onAbort = (): void => stop.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });

    const written = new Set<string>();
    const results: StoredOutput[] = new Array<StoredOutput>(sources.length);
    let failure: { error: unknown } | undefined;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!failure && next < sources.length) {
        const i = next++;
        try {
          results[i] = await this.copyWithRetries(prefix, i, sources[i]!, written, stop.signal);
        } catch (error) {
          failure ??= { error };
          stop.abort(error);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(options.concurrency, sources.length) }, worker));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }

    if (failure || signal.aborted) {
      // Every upload has settled: nothing can still appear after these deletes.
      await Promise.all([...written].map((key) => this.d.bucket.deleteQuietly(key)));
      const error: unknown = failure?.error ?? signal.reason;
      this.d.logger.warn(
        { key_prefix: prefix, err: (error as Error).message, removed: written.size },
        'outputs not transferred',
      );
      throw error;
    }
    const total = results.reduce((sum, r) => sum + r.bytes, 0);
    this.d.metrics.business.transferBytes.inc({ direction: 'output' }, total);
    return results;
  }

  private async copyWithRetries(
    prefix: string,
    index: number,
    url: URL,
    written: Set<string>,
    signal: AbortSignal,
  ): Promise<StoredOutput> {
    const { attempts, retryBaseMs } = this.d.options;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.copy(prefix, index, url, written, signal);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (!(err instanceof Transient)) throw err;
        if (attempt >= attempts) {
          const what = `output ${index + 1} could not be downloaded after ${attempts} attempts: ${err.message}`;
          throw err.timedOut ? Errors.timedOut(what) : Errors.sourceUnavailable(what);
        }
        const delay = Math.max(
          backoffMs(attempt, { baseMs: retryBaseMs }),
          Math.min(err.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS),
        );
        this.d.logger.info(
          { output: index, attempt, delay_ms: Math.round(delay), reason: err.message },
          'retrying output download',
        );
        await sleep(delay, undefined, { signal }).catch(() => {
          throw signal.reason;
        });
      }
    }
  }

  /** One attempt: download, check, stream into the bucket. */
  private async copy(
    prefix: string,
    index: number,
    url: URL,
    written: Set<string>,
    signal: AbortSignal,
  ): Promise<StoredOutput> {
    const { maxBytes, attemptTimeoutMs } = this.d.options;
    const attemptSignal = AbortSignal.any([signal, AbortSignal.timeout(attemptTimeoutMs)]);
    const n = index + 1;
    const timedOut = (): boolean => !signal.aborted && attemptSignal.aborted;

    let res: Response;
    try {
      res = await this.fetch(url, { signal: attemptSignal, redirect: 'follow' });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new Transient(
        timedOut() ? 'the download timed out' : describeNetworkError(err),
        undefined,
        timedOut(),
      );
    }

    const source = res.body ? Readable.fromWeb(res.body) : Readable.from([]);
    let handedOver = false;
    try {
      checkStatus(res, n);
      const declaredLength = Number(res.headers.get('content-length') ?? NaN);
      // fetch decodes a Content-Encoding, after which Content-Length no longer counts the body.
      const encoding = (res.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
      const exactLength =
        Number.isSafeInteger(declaredLength) && declaredLength > 0 && encoding === 'identity'
          ? declaredLength
          : undefined;
      if (declaredLength > maxBytes) throw tooLarge(n, declaredLength, maxBytes);
      const declaredType = mediaType(res.headers.get('content-type'));
      if (!GENERIC_TYPES.has(declaredType) && !Object.values(OUTPUT_CONTENT_TYPES).includes(declaredType)) {
        throw Errors.unsupportedMediaType(`output ${n} is ${declaredType}, not a PNG, JPEG or WebP image`);
      }

      // Read until the header gives type and size; these chunks are the start of the upload.
      const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const head: Buffer[] = [];
      let headBytes = 0;
      let header = readImageHeader(Buffer.alloc(0));
      while (header.state === 'more' && headBytes < HEAD_MAX_BYTES) {
        const chunk = await readSource(iterator, timedOut);
        if (chunk === undefined) break;
        head.push(chunk);
        headBytes += chunk.length;
        header = readImageHeader(Buffer.concat(head, headBytes));
      }
      if (header.state !== 'done') {
        const reason = header.state === 'invalid' ? header.reason : 'no image size in its first bytes';
        throw Errors.unsupportedMediaType(`output ${n} is not a usable PNG, JPEG or WebP image: ${reason}`);
      }
      if (!GENERIC_TYPES.has(declaredType) && declaredType !== OUTPUT_CONTENT_TYPES[header.type]) {
        throw Errors.unsupportedMediaType(`output ${n} is sent as ${declaredType} but is a ${header.type}`);
      }
      if (headBytes > maxBytes) throw tooLarge(n, headBytes, maxBytes);

      const key = `${prefix}/${index}.${OUTPUT_EXTENSIONS[header.type]}`;
      let bytes = 0;
      let sourceFailure: Error | undefined;
      async function* body(): AsyncGenerator<Buffer> {
        for (const chunk of head) {
          bytes += chunk.length;
          yield chunk;
        }
        head.length = 0;
        for (;;) {
          let chunk: Buffer | undefined;
          try {
            chunk = await readSource(iterator, timedOut);
          } catch (err) {
            sourceFailure = err as Error;
            throw err;
          }
          if (chunk === undefined) {
            if (exactLength !== undefined && bytes !== exactLength) {
              throw (sourceFailure = new Transient(
                `the download ended after ${bytes} of ${exactLength} bytes`,
              ));
            }
            return;
          }
          bytes += chunk.length;
          if (bytes > maxBytes) throw (sourceFailure = tooLarge(n, bytes, maxBytes));
          if (exactLength !== undefined && bytes > exactLength) {
            throw (sourceFailure = new Transient(`the download is longer than its Content-Length`));
          }
          yield chunk;
        }
      }
      handedOver = true;
      written.add(key);
      try {
        await this.d.bucket.upload(key, Readable.from(body()), {
          contentType: OUTPUT_CONTENT_TYPES[header.type],
          queueSize: 1,
          // Known length: the copy streams into the bucket while it downloads and is stored when
          // the download ends, instead of being buffered and sent afterwards.
          contentLength: exactLength,
        });
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw sourceFailure ?? err;
      } finally {
        source.destroy();
      }
      return {
        key,
        width: header.width,
        height: header.height,
        contentType: OUTPUT_CONTENT_TYPES[header.type],
        bytes,
      };
    } finally {
      if (!handedOver) source.destroy();
    }
  }
}

function parseSource(raw: string, index: number): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw Errors.invalid(`urls[${index}] is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw Errors.invalid(`urls[${index}] must be http(s)`);
  return url;
}

function checkStatus(res: Response, n: number): void {
  if (res.ok) return;
  const status = res.status;
  if (status === 404 || status === 410 || status === 403) {
    throw Errors.goneAtSource(`output ${n} is gone at its source (HTTP ${status})`);
  }
  if (status >= 500 || status === 408 || status === 425 || status === 429) {
    throw new Transient(`HTTP ${status}`, retryAfterMs(res.headers.get('retry-after')));
  }
  throw Errors.invalid(`output ${n} could not be downloaded: HTTP ${status}`);
}

/** The next chunk of the download, or undefined at its end; a broken connection is transient. */
async function readSource(
  iterator: AsyncIterator<Buffer>,
  timedOut: () => boolean,
): Promise<Buffer | undefined> {
  let next: IteratorResult<Buffer>;
  try {
    next = await iterator.next();
  } catch (err) {
    throw new Transient(
      timedOut() ? 'the download timed out' : `the download broke off: ${describeNetworkError(err)}`,
      undefined,
      timedOut(),
    );
  }
  if (next.done) return undefined;
  const value: Uint8Array = next.value;
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function tooLarge(n: number, bytes: number, max: number): AppError {
  return Errors.payloadTooLarge(`output ${n} is larger than ${max} bytes (${bytes} so far)`);
}

function mediaType(header: string | null): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}
