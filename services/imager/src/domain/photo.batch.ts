import { type IncomingPhoto, type InspectResult, inspectPhoto, sha256Hex } from './photo.inspect';
import {
  compareProblems,
  DEFAULT_PHOTO_LIMITS,
  type NormalisedPhoto,
  type PhotoLimits,
  type PhotoProblem,
  type PhotoRef,
  photoProblems,
} from './photo.rules';

export interface CheckPhotosOptions {
  readonly limits?: PhotoLimits;
  /** Photos decoded at once, which is also how many uploaded originals are held at once. */
  readonly concurrency?: number;
  /** Replaces `inspectPhoto`, e.g. to instrument it. */
  readonly inspect?: (
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

/** Decoding is CPU- and memory-heavy and libvips already uses several threads per image. */
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
  options: CheckPhotosOptions = {},
): Promise<PhotoCheckResult> {
  const limits = options.limits ?? DEFAULT_PHOTO_LIMITS;
  const concurrency = options.concurrency ?? DEFAULT_CHECK_CONCURRENCY;
  const inspect = options.inspect ?? inspectPhoto;
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
