import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { decodeHeic } from './heic.decode';
import {
  DEFAULT_PHOTO_LIMITS,
  type NormalisedPhoto,
  type PhotoLimits,
  type PhotoProblem,
  photoProblems,
} from './photo.rules';
import { type ImageType, SNIFF_HEAD_BYTES, sniffImageType } from './photo.sniff';

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

/** sharp's own default, stated here so HEIC (decoded outside sharp) gets the same ceiling before
 * its pixels are allocated. */
export const MAX_INPUT_PIXELS = 0x3fff * 0x3fff;

export const JPEG_QUALITY = 92;

/**
 * 'error' rejects truncated or corrupt pixel data (a half-grey training photo is worse than a
 * refusal) but, unlike sharp's default 'warning', accepts files whose decoder only warned, as
 * many phones' and editors' JPEGs do while displaying fine everywhere.
 */
const FAIL_ON = 'error' as const;

/**
 * Checks one photo and, when it passes, returns it upright as a metadata-free sRGB JPEG. Cheap
 * checks that do not need the pixels are all reported together; decoding happens only when they
 * pass, and a file that cannot be decoded gets no further checks.
 *
 * `sha256` may be passed when the caller already hashed the bytes.
 */
export async function inspectPhoto(
  input: IncomingPhoto & { readonly sha256?: string },
  limits: PhotoLimits = DEFAULT_PHOTO_LIMITS,
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

  let size: { width: number; height: number };
  try {
    size = await uprightSize(bytes);
  } catch (error) {
    return rejected(photoProblems.undecodable(input, describeDecodeError(error)));
  }
  if (size.width * size.height > MAX_INPUT_PIXELS) {
    const megapixels = Math.floor(MAX_INPUT_PIXELS / 1e6);
    const reason = `${size.width}×${size.height} px is more than ${megapixels} megapixels`;
    return rejected(photoProblems.undecodable(input, reason));
  }
  if (Math.min(size.width, size.height) < limits.minSide) {
    return rejected(photoProblems.tooSmall(input, size.width, size.height, limits));
  }

  let jpeg: { data: Buffer; info: sharp.OutputInfo };
  try {
    jpeg = await normalise(await openPixels(bytes, type));
  } catch (error) {
    return rejected(photoProblems.undecodable(input, describeDecodeError(error)));
  }

  return {
    ok: true,
    photo: {
      index: input.index,
      file: input.file,
      sha256: input.sha256 ?? sha256Hex(bytes),
      jpeg: jpeg.data,
      width: jpeg.info.width,
      height: jpeg.info.height,
    },
  };
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads only the headers: sharp parses HEIC containers too, it just cannot decode HEVC. */
async function uprightSize(bytes: Buffer): Promise<{ width: number; height: number }> {
  const meta = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  return { width: meta.autoOrient.width, height: meta.autoOrient.height };
}

async function openPixels(bytes: Buffer, type: ImageType): Promise<sharp.Sharp> {
  if (type !== 'heic') return sharp(bytes, { failOn: FAIL_ON, limitInputPixels: MAX_INPUT_PIXELS });
  const { width, height, rgba } = await decodeHeic(bytes);
  return sharp(rgba, { raw: { width, height, channels: 4 }, limitInputPixels: MAX_INPUT_PIXELS });
}

/** Without keepMetadata/withMetadata sharp writes no EXIF, XMP, IPTC or ICC, and converts
 * embedded profiles (Display P3, CMYK…) to sRGB first. */
function normalise(image: sharp.Sharp): Promise<{ data: Buffer; info: sharp.OutputInfo }> {
  return image
    .autoOrient()
    .flatten({ background: '#ffffff' }) // transparent cut-outs become white, not black
    .toColourspace('srgb')
    .jpeg({ quality: JPEG_QUALITY, mozjpeg: false })
    .toBuffer({ resolveWithObject: true });
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
