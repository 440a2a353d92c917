import { createHash } from 'node:crypto';
import type { DecodeBudget } from './decode-budget.service';
import { SNIFF_HEAD_BYTES, sniffImageType } from './image.rules';
import {
  canPassThrough,
  compareProblems,
  decodeCost,
  DEFAULT_PHOTO_LIMITS,
  type NormalisedPhoto,
  type PhotoLimits,
  type PhotoProblem,
  type PhotoRef,
  photoProblems,
  uprightSize,
} from './photo.rules';
import { DecodeError, type EncodedPhoto, type PhotoCodec, type PhotoHeader } from './ports';

/** One uploaded file as it arrives. */
export interface IncomingPhoto {
  /** 0-based position in the upload. */
  readonly index: number;
  /** The client's file name; only ever echoed back, never used as a path. */
  readonly file: string;
  readonly bytes: Buffer;
}

export type InspectResult =
  | { readonly ok: true; readonly photo: NormalisedPhoto }
  | { readonly ok: false; readonly problems: PhotoProblem[] };

export interface PhotoDeps {
  readonly codec: PhotoCodec;
  /** Shared by every upload the process handles. */
  readonly budget: DecodeBudget;
}

/**
 * Checks one photo and, when it passes, returns it upright as a metadata-free sRGB JPEG that fits
 * `limits.maxSide`. Cheap checks that do not need the pixels are all reported together; decoding
 * happens only when they pass, within the shared decode budget (waiting for room), and a file that
 * cannot be decoded gets no further checks.
 *
 * The size checks look at the headers of the image that is then decoded (for HEIC, the primary
 * image), so a file cannot pass them with one image and be decoded as another.
 *
 * `sha256` may be passed when the caller already hashed the bytes; `signal` stops a wait for budget.
 */
export async function inspectPhoto(
  input: IncomingPhoto & { readonly sha256?: string },
  limits: PhotoLimits,
  deps: PhotoDeps,
  signal?: AbortSignal,
): Promise<InspectResult> {
  const { bytes } = input;
  if (bytes.length === 0) return rejected(photoProblems.emptyFile(input));

  const problems: PhotoProblem[] = [];
  const type = sniffImageType(bytes.subarray(0, SNIFF_HEAD_BYTES));
  if (type === null) problems.push(photoProblems.unsupportedType(input));
  if (bytes.length > limits.maxFileBytes) {
    problems.push(photoProblems.fileTooLarge(input, bytes.length, limits));
  }
  if (type === null || problems.length > 0) return rejected(...problems);

  let header: PhotoHeader;
  try {
    header = await deps.codec.readHeader(bytes);
  } catch (error) {
    return rejected(photoProblems.undecodable(input, describeDecodeError(error)));
  }
  const upright = uprightSize(header);
  if (header.width * header.height > limits.maxPixels) {
    return rejected(photoProblems.tooManyPixels(input, upright.width, upright.height, limits));
  }
  if (Math.min(upright.width, upright.height) < limits.minSide) {
    return rejected(photoProblems.tooSmall(input, upright.width, upright.height, limits));
  }
  const cost = decodeCost(type, header.width, header.height, limits.maxSide);
  if (!deps.budget.fits(cost)) {
    return rejected(photoProblems.decodeTooCostly(input, upright.width, upright.height, cost));
  }

  let encoded: EncodedPhoto;
  const release = await deps.budget.acquire(cost, signal);
  try {
    encoded = canPassThrough(type, header, limits)
      ? await deps.codec.stripJpeg(bytes, header)
      : await deps.codec.normalise(bytes, type, header, limits);
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    return rejected(photoProblems.undecodable(input, describeDecodeError(error)));
  } finally {
    release();
  }

  return {
    ok: true,
    photo: {
      index: input.index,
      file: input.file,
      sha256: input.sha256 ?? sha256Hex(bytes),
      jpeg: encoded.jpeg,
      width: encoded.width,
      height: encoded.height,
    },
  };
}

function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** libvips' and libheif's wording means nothing to a customer; a short reason does. */
function describeDecodeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/premature end|truncat|bad seek|unexpected end|end of (file|stream)|read error/i.test(message)) {
    return 'the file is truncated or corrupt';
  }
  if (/pixel limit/i.test(message)) return 'the image has too many pixels';
  return 'the image data is corrupt or uses an unsupported encoding';
}

function rejected(...problems: PhotoProblem[]): InspectResult {
  return { ok: false, problems };
}

export interface CheckPhotosOptions {
  readonly limits?: PhotoLimits;
  /** Photos decoded at once, which is also how many uploaded originals are held at once. */
  readonly concurrency?: number;
  /** Usually `inspectPhoto` bound to the codec and the budget; tests instrument it. */
  readonly inspect: (
    photo: IncomingPhoto & { sha256: string },
    limits: PhotoLimits,
  ) => Promise<InspectResult>;
}

export interface PhotoCheckResult {
  /** Every problem of every file, by index then code; any problem means the upload is refused. */
  readonly problems: PhotoProblem[];
  /** The photos that passed, by index. */
  readonly photos: NormalisedPhoto[];
}

/**
 * Decoding is CPU- and memory-heavy and libvips already uses several threads per image.
 * @public bench/lib/normalise-only.mjs loads it from dist/ (knip does not follow that require).
 */
export const DEFAULT_CHECK_CONCURRENCY = 2;

/**
 * Checks an upload as its files arrive. A file is pulled from `incoming` only when an inspection
 * slot is free, so a slow decoder slows the upload down instead of piling originals up in
 * memory; once inspected, only the normalised JPEG is kept.
 *
 * Duplicates are found by the SHA-256 of the uploaded bytes in arrival order, so the later file
 * is the duplicate; it is not decoded again. Files past `maxCount` are counted but neither checked
 * nor kept. If the source throws or an inspection fails unexpectedly, the running inspections
 * are awaited and the error is rethrown.
 */
export async function checkPhotos(
  incoming: AsyncIterable<IncomingPhoto> | Iterable<IncomingPhoto>,
  options: CheckPhotosOptions,
): Promise<PhotoCheckResult> {
  const limits = options.limits ?? DEFAULT_PHOTO_LIMITS;
  const concurrency = options.concurrency ?? DEFAULT_CHECK_CONCURRENCY;
  const { inspect } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }

  const problems: PhotoProblem[] = [];
  const photos: NormalisedPhoto[] = [];
  const firstByHash = new Map<string, PhotoRef>();
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let count = 0;
  let firstExtra: PhotoRef | undefined;
  let totalBytes = 0;

  const source = each(incoming);
  try {
    for (;;) {
      while (running.size >= concurrency) await Promise.race(running);
      if (failure) break;
      const next = await source.next();
      if (next.done) break;
      const photo = next.value;

      count += 1;
      if (count > limits.maxCount) {
        firstExtra ??= { index: photo.index, file: photo.file };
        continue;
      }

      // Reported once, on the file that crosses the limit.
      const totalBefore = totalBytes;
      totalBytes += photo.bytes.length;
      if (totalBefore <= limits.maxTotalBytes && totalBytes > limits.maxTotalBytes) {
        problems.push(photoProblems.totalTooLarge(photo, totalBytes, limits));
      }

      const sha256 = sha256Hex(photo.bytes);
      if (photo.bytes.length > 0) {
        const first = firstByHash.get(sha256);
        if (first) {
          problems.push(photoProblems.duplicate(photo, first));
          continue;
        }
        firstByHash.set(sha256, { index: photo.index, file: photo.file });
      }

      const task: Promise<void> = inspect({ ...photo, sha256 }, limits)
        .then(
          (result) => {
            if (result.ok) photos.push(result.photo);
            else problems.push(...result.problems);
          },
          (error: unknown) => {
            failure ??= { error };
          },
        )
        .finally(() => running.delete(task));
      running.add(task);
    }
  } catch (error) {
    failure ??= { error };
  }

  await Promise.all(running);
  if (failure) {
    await source.return(undefined).catch(() => undefined); // the first error is the one to report
    throw failure.error;
  }

  if (count < limits.minCount) problems.push(photoProblems.tooFewImages(count, limits));
  if (firstExtra) problems.push(photoProblems.tooManyImages(firstExtra, count, limits));

  return {
    problems: problems.sort(compareProblems),
    photos: photos.sort((a, b) => a.index - b.index),
  };
}

/** One async iterator over either kind of source; its return() closes the source too. */
async function* each<T>(items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T, void, undefined> {
  yield* items;
}
