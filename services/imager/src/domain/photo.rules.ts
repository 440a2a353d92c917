import type { PhotoHeader } from './ports';

/** Limits one training upload must respect. The service builds these from its config (and the
 * plan's min/max images); the defaults are the product's. */
export interface PhotoLimits {
  /** Both sides, measured upright (after EXIF orientation), must be at least this many pixels. */
  readonly minSide: number;
  readonly maxFileBytes: number;
  readonly maxTotalBytes: number;
  readonly minCount: number;
  readonly maxCount: number;
  /** The stored pixel grid of a photo may hold at most this many pixels (decompression bombs). */
  readonly maxPixels: number;
  /** Photos are scaled down to fit this long side; smaller ones are kept at their size. */
  readonly maxSide: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_PHOTO_LIMITS: PhotoLimits = Object.freeze({
  minSide: 512,
  maxFileBytes: 20 * MiB,
  maxTotalBytes: 300 * MiB,
  minCount: 5,
  maxCount: 30,
  maxPixels: 40_000_000,
  maxSide: 2048,
});

/** In the order problems of one file are listed. */
export const PHOTO_PROBLEM_CODES = [
  'empty_file',
  'unsupported_type',
  'file_too_large',
  'total_too_large',
  'duplicate',
  'undecodable',
  'too_large',
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
  /** Upright sRGB JPEG within `maxSide`, without EXIF, XMP, IPTC, comments or a non-sRGB ICC
   * profile: either re-encoded, or the uploaded JPEG with its metadata segments removed. */
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

  tooManyPixels: (photo: PhotoRef, width: number, height: number, limits: PhotoLimits): PhotoProblem =>
    problem(
      photo,
      'too_large',
      `${width}×${height} px; a photo may have at most ${megapixels(limits.maxPixels)} megapixels`,
    ),

  decodeTooCostly: (photo: PhotoRef, width: number, height: number, costBytes: number): PhotoProblem =>
    problem(
      photo,
      'too_large',
      `${width}×${height} px would take ${formatBytes(costBytes)} of memory to decode, more than any photo may; export it at a smaller size or as a JPEG`,
    ),

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

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${trim(bytes / 1024)} KiB`;
  return `${trim(bytes / MiB)} MiB`;
}

function megapixels(pixels: number): string {
  return trim(pixels / 1e6);
}

function trim(value: number): string {
  return value.toFixed(1).replace(/\.0$/, '');
}

function plural(count: number, noun: string): string {
  return count === 1 ? noun : `${noun}s`;
}

/** EXIF orientation 1 (or none): the stored grid is upright. */
const UPRIGHT = 1;

/** Width and height as the photo is seen: orientations 5–8 swap them. */
export function uprightSize(h: Pick<PhotoHeader, 'width' | 'height' | 'orientation'>): {
  width: number;
  height: number;
} {
  return h.orientation >= 5 && h.orientation <= 8
    ? { width: h.height, height: h.width }
    : { width: h.width, height: h.height };
}

/**
 * A JPEG that is already what normalising would make — upright, 3-channel sRGB (no profile or an
 * sRGB one), within the long side — keeps its pixels: only its metadata segments are removed.
 * Re-encoding it would cost a decode and an encode, a second lossy generation, and usually more
 * bytes than the original.
 */
export function canPassThrough(type: string, h: PhotoHeader, limits: Pick<PhotoLimits, 'maxSide'>): boolean {
  return (
    type === 'jpeg' &&
    h.plainJpeg &&
    h.orientation === UPRIGHT &&
    h.channels === 3 &&
    h.space === 'srgb' &&
    h.profile !== 'other' &&
    Math.max(h.width, h.height) <= limits.maxSide
  );
}

/** libjpeg's DCT scaling: the largest of 8, 4, 2 that still leaves at least the target size
 * (sharp's own choice, including its step down when the factor is exactly a power of two). */
function jpegShrinkOnLoad(width: number, height: number, maxSide: number): number {
  const shrink = Math.max(width, height) / maxSide;
  for (const factor of [8, 4, 2]) {
    if (shrink >= factor) return Math.floor(shrink) === factor ? factor / 2 : factor;
  }
  return 1;
}

/** libvips' and the encoder's fixed buffers, thread-local caches and the like, per decode. */
const DECODE_OVERHEAD = 8 * MiB;

/**
 * An upper estimate of the memory one photo's decode holds at its peak, for the imager's shared
 * budget. Measured on this codec (sharp 0.35 / libvips 8.17, libheif 1.23 in WebAssembly):
 *
 * - JPEG and WebP load shrunk (DCT scaling / scaled decode) and stream through the resize, so what
 *   is held is the scaled image (twice: the oriented copy and the encoder's input) and a band of
 *   input lines;
 * - PNG and AVIF are decoded whole (interlaced PNG, libheif), 4 bytes a pixel;
 * - HEIC is decoded by libheif in WebAssembly: the YUV planes and the RGBA image in its heap, the
 *   RGBA copy handed to JavaScript and sharp's own input: ~16 bytes a pixel.
 */
export function decodeCost(type: string, width: number, height: number, maxSide: number): number {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const outPixels = Math.ceil(width * scale) * Math.ceil(height * scale);
  switch (type) {
    case 'jpeg': {
      const shrink = jpegShrinkOnLoad(width, height, maxSide);
      const band = Math.ceil(width / shrink) * 3 * 64;
      return DECODE_OVERHEAD + outPixels * 3 * 2 + band;
    }
    case 'webp':
      return DECODE_OVERHEAD + outPixels * 4 * 2;
    case 'heic':
      return DECODE_OVERHEAD + width * height * 16 + outPixels * 3;
    default:
      return DECODE_OVERHEAD + width * height * 4 + outPixels * 3;
  }
}
