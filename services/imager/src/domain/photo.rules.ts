/** Limits one training upload must respect. The service builds these from its config (and the
 * plan's min/max images); the defaults are the product's. */
export interface PhotoLimits {
  /** Both sides, measured upright (after EXIF orientation), must be at least this many pixels. */
  readonly minSide: number;
  readonly maxFileBytes: number;
  readonly maxTotalBytes: number;
  readonly minCount: number;
  readonly maxCount: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_PHOTO_LIMITS: PhotoLimits = Object.freeze({
  minSide: 512,
  maxFileBytes: 20 * MiB,
  maxTotalBytes: 300 * MiB,
  minCount: 5,
  maxCount: 30,
});

/** In the order problems of one file are listed. */
export const PHOTO_PROBLEM_CODES = [
  'empty_file',
  'unsupported_type',
  'file_too_large',
  'total_too_large',
  'duplicate',
  'undecodable',
  'too_small',
  'too_few_images',
  'too_many_images',
] as const;

export type PhotoProblemCode = (typeof PHOTO_PROBLEM_CODES)[number];

export interface PhotoProblem {
  /** The client's file name, as given; '' for too_few_images, which no file caused. */
  readonly file: string;
  /** 0-based position in the upload (a proto uint32, so never negative). too_few_images uses
   * the position of the first missing photo; too_many_images the first photo past the limit. */
  readonly index: number;
  readonly code: PhotoProblemCode;
  /** For the customer: says what is wrong and what would be right. */
  readonly detail: string;
}

/** A photo that passed every check, ready to be zipped. */
export interface NormalisedPhoto {
  readonly index: number;
  readonly file: string;
  /** Hex SHA-256 of the bytes the customer uploaded, not of `jpeg`. */
  readonly sha256: string;
  /** Upright, sRGB, baseline JPEG without EXIF, XMP, IPTC or ICC metadata. */
  readonly jpeg: Buffer;
  readonly width: number;
  readonly height: number;
}

/** What identifies one uploaded file in a problem. */
export interface PhotoRef {
  readonly index: number;
  readonly file: string;
}

/** Problem factories: every customer-facing wording lives here, in one place. */
export const photoProblems = {
  emptyFile: (photo: PhotoRef): PhotoProblem => problem(photo, 'empty_file', 'the file is empty'),

  unsupportedType: (photo: PhotoRef): PhotoProblem =>
    problem(photo, 'unsupported_type', 'not a JPEG, PNG, WebP, HEIC/HEIF or AVIF image'),

  fileTooLarge: (photo: PhotoRef, bytes: number, limits: PhotoLimits): PhotoProblem =>
    problem(
      photo,
      'file_too_large',
      `${formatBytes(bytes)}; each photo may be at most ${formatBytes(limits.maxFileBytes)}`,
    ),

  totalTooLarge: (photo: PhotoRef, totalBytes: number, limits: PhotoLimits): PhotoProblem =>
    problem(
      photo,
      'total_too_large',
      `with this photo the upload reaches ${formatBytes(totalBytes)}; all photos together may be at most ${formatBytes(limits.maxTotalBytes)}`,
    ),

  undecodable: (photo: PhotoRef, reason: string): PhotoProblem =>
    problem(photo, 'undecodable', `the image could not be decoded: ${reason}`),

  tooSmall: (photo: PhotoRef, width: number, height: number, limits: PhotoLimits): PhotoProblem =>
    problem(photo, 'too_small', `${width}×${height} px; both sides must be at least ${limits.minSide} px`),

  duplicate: (photo: PhotoRef, first: PhotoRef): PhotoProblem =>
    problem(photo, 'duplicate', `same content as photo ${first.index + 1} (${first.file})`),

  tooFewImages: (count: number, limits: PhotoLimits): PhotoProblem =>
    problem(
      { index: count, file: '' },
      'too_few_images',
      `${count} ${plural(count, 'photo')}; at least ${limits.minCount} are needed`,
    ),

  tooManyImages: (firstExtra: PhotoRef, count: number, limits: PhotoLimits): PhotoProblem =>
    problem(
      firstExtra,
      'too_many_images',
      `${count} photos; at most ${limits.maxCount} are allowed (only the first ${limits.maxCount} were checked)`,
    ),
};

function problem(photo: PhotoRef, code: PhotoProblemCode, detail: string): PhotoProblem {
  return { file: photo.file, index: photo.index, code, detail };
}

/** Orders problems by file position, then in the order of `PHOTO_PROBLEM_CODES`. */
export function compareProblems(a: PhotoProblem, b: PhotoProblem): number {
  return a.index - b.index || PHOTO_PROBLEM_CODES.indexOf(a.code) - PHOTO_PROBLEM_CODES.indexOf(b.code);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${trim(bytes / 1024)} KiB`;
  return `${trim(bytes / MiB)} MiB`;
}

function trim(value: number): string {
  return value.toFixed(1).replace(/\.0$/, '');
}

function plural(count: number, noun: string): string {
  return count === 1 ? noun : `${noun}s`;
}
