import { Transform, pipeline } from 'node:stream';
import { Errors, type Logger, type Metrics } from '@atelier/kit';
import { sniffImageType, SNIFF_HEAD_BYTES } from './image.rules';
import { datasetKey } from './object.rules';
import { type PhotoLimits, type PhotoProblem, photoProblems } from './photo.rules';
import {
  checkPhotos,
  type IncomingPhoto,
  inspectPhoto,
  type InspectResult,
  type PhotoDeps,
} from './photo.service';
import type { ObjectStore, ZipWriter } from './ports';
import type { UrlSigner } from './url.service';

/** One message of the PackTrainingImages stream (the generated proto type fits this shape). */
export interface PackPart {
  header?: { accountId: string; datasetId: string; minImages: number; maxImages: number } | undefined;
  fileStart?: { index: number; filename: string; contentType: string } | undefined;
  chunk?: Buffer | undefined;
  end?: { files: number } | undefined;
}

export type PackResult =
  | { ok: false; problems: PhotoProblem[] }
  | { ok: true; key: string; url: string; expiresAt: Date; images: number; zipBytes: number };

export interface PackLimits {
  minSide: number;
  maxSide: number;
  maxPixels: number;
  maxFileBytes: number;
  maxTotalBytes: number;
  /** Used when the header leaves min_images / max_images at 0. */
  defaultMinCount: number;
  defaultMaxCount: number;
  /** The most photos any header may ask for. */
  maxCountCeiling: number;
}

export interface PackDeps {
  bucket: ObjectStore;
  urls: UrlSigner;
  photos: PhotoDeps;
  /** A new zip stream per dataset. */
  createZip: () => ZipWriter;
  logger: Logger;
  metrics: Metrics;
  limits: PackLimits;
  /** Photos inspected at once. */
  concurrency: number;
}

/** Client file names are only echoed back; a long one is cut. */
const MAX_FILE_NAME = 255;
const EMPTY = Buffer.alloc(0);

/** Why the zip was given up before it was finished; never reported, only distinguishes our own
 * abandonment from a failing bucket. */
class Abandoned extends Error {}

/**
 * PackTrainingImages: receives the photos file by file, checks them with the domain's batch
 * checker while they arrive, and streams the zip of the accepted ones into the bucket as they pass.
 *
 * Memory: the file being received (at most PHOTO_MAX_FILE_BYTES; the rest of a larger file is
 * counted and dropped), the originals being inspected (the checker's concurrency), and the
 * upload's part buffers. Normalised JPEGs go straight into the zip stream instead of being kept
 * until the end, so the whole upload is never held at once.
 *
 * Nothing is ever visible in the bucket unless every photo passed: the object only comes into
 * existence when the zip stream ends, and it is ended only once the client has sent everything
 * and no file has a problem. Before that, the first problem (or a cancelled call) destroys the zip
 * stream, which makes the upload abort (a multipart upload already begun is aborted too), while
 * the remaining files are still received and checked so every problem of every file is reported.
 */
export class DatasetPacker {
  constructor(private readonly d: PackDeps) {}

  async pack(parts: AsyncIterable<PackPart>, signal: AbortSignal): Promise<PackResult> {
    // grpc-js ends the request stream of a caller that cancels, goes away or runs out of time
    // like a finished one (and only then says 'cancelled'): the end message tells the two apart.
    const messages = parts[Symbol.asyncIterator]();
    try {
      const first = await messages.next();
      const header = first.done ? undefined : first.value.header;
      if (!header) throw Errors.invalid('the first message of PackTrainingImages must be the header');
      const key = datasetKey(header.accountId, header.datasetId);
      const limits = this.photoLimits(header);
      return await this.packFiles(key, limits, messages, signal);
    } finally {
      await Promise.resolve(messages.return?.()).catch(() => undefined);
    }
  }

  private photoLimits(header: NonNullable<PackPart['header']>): PhotoLimits {
    const l = this.d.limits;
    const minCount = header.minImages || Math.min(l.defaultMinCount, header.maxImages || l.defaultMaxCount);
    const maxCount = header.maxImages || Math.max(l.defaultMaxCount, minCount);
    if (minCount > maxCount) {
      throw Errors.invalid(`min_images (${minCount}) must not exceed max_images (${maxCount})`);
    }
    if (maxCount > l.maxCountCeiling) {
      throw Errors.invalid(`max_images is at most ${l.maxCountCeiling}, got ${maxCount}`);
    }
    return {
      minSide: l.minSide,
      maxSide: l.maxSide,
      maxPixels: l.maxPixels,
      maxFileBytes: l.maxFileBytes,
      maxTotalBytes: l.maxTotalBytes,
      minCount,
      maxCount,
    };
  }

  private async packFiles(
    key: string,
    limits: PhotoLimits,
    messages: AsyncIterator<PackPart>,
    signal: AbortSignal,
  ): Promise<PackResult> {
    const { bucket, logger } = this.d;
    const zip = this.d.createZip();
    let zipBytes = 0;
    let zipEnded = false;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        zipBytes += chunk.length;
        done(null, chunk);
      },
    });
    counted.once('end', () => (zipEnded = true));
    // Either side failing destroys the other: a dead upload rejects pending addFile calls, and a
    // destroyed zip makes the upload give up without creating the object.
    pipeline(zip.stream, counted, () => undefined);

    let abandoned: Error | undefined;
    let uploadFailure: unknown;
    const abandon = (reason: Error): void => {
      if (abandoned) return;
      abandoned = reason;
      zip.stream.destroy(reason);
    };
    const uploading = bucket.upload(key, counted, { contentType: 'application/zip', queueSize: 2 }).then(
      () => undefined,
      (err: unknown) => {
        if (!abandoned) uploadFailure = err;
        throw err;
      },
    );
    uploading.catch(() => undefined); // observed below
    const onAbort = (): void => abandon(new Abandoned('the call was cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });

    const width = Math.max(2, String(limits.maxCount).length);
    const entryName = (index: number): string => `photo-${String(index + 1).padStart(width, '0')}.jpg`;
    const oversize = new Map<number, { bytes: number; head: Buffer }>();

    const inspect = async (
      photo: IncomingPhoto & { sha256: string },
      l: PhotoLimits,
    ): Promise<InspectResult> => {
      const large = oversize.get(photo.index);
      if (large) {
        const problems: PhotoProblem[] = [];
        if (sniffImageType(large.head) === null) problems.push(photoProblems.unsupportedType(photo));
        problems.push(photoProblems.fileTooLarge(photo, large.bytes, l));
        return { ok: false, problems };
      }
      const result = await inspectPhoto(photo, l, this.d.photos, signal);
      if (!result.ok) {
        abandon(new Abandoned('a photo was rejected'));
        return result;
      }
      if (!abandoned) {
        try {
          await zip.addFile(entryName(photo.index), result.photo.jpeg);
        } catch {
          // The zip was given up meanwhile (a problem, a cancel, a failed upload); the reason is
          // reported from where it happened.
        }
      }
      // The JPEG now lives in the zip stream (or is no longer needed): the checker keeps the rest.
      return { ok: true, photo: { ...result.photo, jpeg: EMPTY } };
    };

    const receive = receiveFiles(messages, limits, {
      onOversize: (index, bytes, head) => {
        oversize.set(index, { bytes, head });
        abandon(new Abandoned('a photo is too large'));
      },
      onRejectedForSure: () => abandon(new Abandoned('the upload breaks a limit')),
      uploadFailure: () => uploadFailure,
    });

    let checked: Awaited<ReturnType<typeof checkPhotos>>;
    try {
      checked = await checkPhotos(receive, { limits, concurrency: this.d.concurrency, inspect });
    } catch (err) {
      abandon(err instanceof Error ? err : new Error(String(err)));
      await uploading.catch(() => undefined);
      throw uploadFailure ?? err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }

    if (checked.problems.length > 0) {
      abandon(new Abandoned('the photos were rejected'));
      await uploading.catch(() => undefined);
      return { ok: false, problems: checked.problems };
    }
    if (signal.aborted) {
      abandon(new Abandoned('the call was cancelled'));
      await uploading.catch(() => undefined);
      throw signal.reason;
    }
    if (abandoned || zip.stream.destroyed) {
      // The upload died while the last photos were checked; settling it says why.
      const reason = await uploading.then(
        () => undefined,
        (err: unknown) => err,
      );
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the upload's own failure, passed on as caught (narrowed to {} by the check, not a new non-Error)
      throw uploadFailure ?? reason ?? abandoned;
    }

    await zip.finish().catch(() => undefined); // a failed upload reports itself just below
    try {
      await uploading;
    } catch (err) {
      // Only an upload whose stream ended can have created the object (its last PUT or the
      // completion may have succeeded before the error): remove what may be there.
      if (zipEnded) await bucket.deleteQuietly(key);
      throw err;
    }
    try {
      if (signal.aborted) throw signal.reason;
      const { url, expiresAt } = await this.d.urls.datasetUrl(key);
      this.d.metrics.business.transferBytes.inc({ direction: 'dataset' }, zipBytes);
      logger.info({ key, images: checked.photos.length, zip_bytes: zipBytes }, 'dataset stored');
      return { ok: true, key, url, expiresAt, images: checked.photos.length, zipBytes };
    } catch (err) {
      // The caller will never learn the key: the object would be an orphan.
      await bucket.deleteQuietly(key);
      throw err;
    }
  }
}

interface ReceiveHooks {
  /** A file went past the per-file limit; only its size and first bytes were kept. */
  onOversize(index: number, bytes: number, head: Buffer): void;
  /** Something the checker will report for sure (too many files, total too large). */
  onRejectedForSure(): void;
  /** Set when the bucket upload failed: receiving stops with that error. */
  uploadFailure(): unknown;
}

/**
 * Reassembles files from the stream, yielding each one when the next begins or the stream ends.
 * The checker pulls a file only when it has room, so while it is busy nothing more is read and
 * gRPC flow control holds the client back.
 *
 * A file past the per-file limit stops being buffered: its first bytes and size are kept and it is
 * handed on empty (the inspect hook reports it). Files past max_images are not buffered at all
 * (the checker only counts them).
 */
async function* receiveFiles(
  messages: AsyncIterator<PackPart>,
  limits: PhotoLimits,
  hooks: ReceiveHooks,
): AsyncGenerator<IncomingPhoto, void, undefined> {
  let current: { index: number; file: string; chunks: Buffer[]; bytes: number; head: Buffer } | undefined;
  let files = 0;
  let totalBytes = 0;
  let ended = false;

  const complete = (): IncomingPhoto => {
    const file = current!;
    current = undefined;
    if (file.index >= limits.maxCount) return { index: file.index, file: file.file, bytes: EMPTY };
    if (file.bytes > limits.maxFileBytes) {
      hooks.onOversize(file.index, file.bytes, file.head);
      return { index: file.index, file: file.file, bytes: EMPTY };
    }
    return { index: file.index, file: file.file, bytes: Buffer.concat(file.chunks, file.bytes) };
  };

  for (;;) {
    const next = await messages.next();
    const failure = hooks.uploadFailure();
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the upload's own failure, passed on as caught (narrowed to {} by the check, not a new non-Error)
    if (failure) throw failure;
    if (next.done) break;
    const part = next.value;
    if (ended) throw Errors.invalid('nothing may follow the end message');
    if (part.header) throw Errors.invalid('the header must be sent once, first');
    if (part.end) {
      if (part.end.files !== files)
        throw Errors.invalid(`end.files is ${part.end.files} but ${files} files were sent`);
      ended = true;
      continue;
    }
    if (part.fileStart) {
      if (current) yield complete();
      if (part.fileStart.index !== files) {
        throw Errors.invalid(
          `file_start.index must be ${files} (files are numbered in order from 0), got ${part.fileStart.index}`,
        );
      }
      files += 1;
      if (files > limits.maxCount) hooks.onRejectedForSure();
      current = {
        index: part.fileStart.index,
        file: part.fileStart.filename.slice(0, MAX_FILE_NAME),
        chunks: [],
        bytes: 0,
        head: EMPTY,
      };
      continue;
    }
    if (part.chunk === undefined)
      throw Errors.invalid('a message must carry a header, a file_start, a chunk or the end');
    if (!current) throw Errors.invalid('a chunk arrived before any file_start');
    const chunk = part.chunk;
    if (current.head.length < SNIFF_HEAD_BYTES) {
      current.head = Buffer.concat([current.head, chunk.subarray(0, SNIFF_HEAD_BYTES - current.head.length)]);
    }
    current.bytes += chunk.length;
    totalBytes += chunk.length;
    if (totalBytes > limits.maxTotalBytes) hooks.onRejectedForSure();
    // Past max_images nothing is checked; past the per-file limit nothing more is needed.
    if (current.index < limits.maxCount && current.bytes <= limits.maxFileBytes) current.chunks.push(chunk);
    else current.chunks = [];
  }
  // Without the end marker the upload is incomplete (its caller went away), and nothing may be stored.
  if (!ended) throw Errors.invalid('the upload stopped before its end message');
  if (current) yield complete();
}
