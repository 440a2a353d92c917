/** The image types customers may upload. Anything else is refused before a decoder sees it, so
 * sharp's other loaders (SVG, PDF, TIFF, GIF…) are never reachable from an upload. */
export type ImageType = 'jpeg' | 'png' | 'webp' | 'heic' | 'avif';

/** How many leading bytes `sniffImageType` looks at; an ftyp box with many brands may need them. */
export const SNIFF_HEAD_BYTES = 64;

const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis']);
const AVIF_BRANDS = new Set(['avif', 'avis']);
// Generic HEIF brands say "a HEIF file" without naming the codec.
const HEIF_GENERIC_BRANDS = new Set(['mif1', 'msf1']);

/** The type named by the file's magic bytes; the file name and the client's content type are
 * never trusted. */
export function sniffImageType(head: Buffer): ImageType | null {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 8 && head.subarray(0, 8).equals(PNG_SIGNATURE)) return 'png';
  if (head.length >= 12 && ascii(head, 0) === 'RIFF' && ascii(head, 8) === 'WEBP') return 'webp';
  return sniffIsoBmff(head);
}

function sniffIsoBmff(head: Buffer): ImageType | null {
  if (head.length < 12 || ascii(head, 4) !== 'ftyp') return null;
  const major = ascii(head, 8);
  if (AVIF_BRANDS.has(major)) return 'avif';
  if (HEIC_BRANDS.has(major)) return 'heic';

  // A box size of 0 means "to the end of the file"; otherwise never read past the ftyp box.
  const boxSize = head.readUInt32BE(0);
  const end = boxSize === 0 ? head.length : Math.min(boxSize, head.length);
  const compatible: string[] = [];
  for (let offset = 16; offset + 4 <= end; offset += 4) compatible.push(ascii(head, offset));

  // A generic major brand (mif1) with an AV1 compatible brand is how many AVIF encoders label
  // their files, so the codec-specific brands decide before the generic ones.
  if (compatible.some((brand) => AVIF_BRANDS.has(brand))) return 'avif';
  if (compatible.some((brand) => HEIC_BRANDS.has(brand))) return 'heic';
  if (HEIF_GENERIC_BRANDS.has(major) || compatible.some((brand) => HEIF_GENERIC_BRANDS.has(brand))) {
    return 'heic';
  }
  return null;
}

function ascii(buffer: Buffer, offset: number): string {
  return buffer.toString('latin1', offset, offset + 4);
}

/**
 * Type and pixel size of a generated image from its first bytes, without decoding it and without
 * the rest of the file: a PNG says both in its first 24 bytes, a WebP in its first 30, a JPEG in
 * its frame header, which follows the metadata segments (usually within a few KiB).
 *
 * The size is the stored pixel grid; a JPEG's EXIF orientation (which generated images do not
 * carry) is not applied.
 */
export type OutputImageType = 'png' | 'jpeg' | 'webp';

export const OUTPUT_CONTENT_TYPES: Record<OutputImageType, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

export const OUTPUT_EXTENSIONS: Record<OutputImageType, string> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

export type ImageHeader =
  | {
      readonly state: 'done';
      readonly type: OutputImageType;
      readonly width: number;
      readonly height: number;
    }
  /** `type` once the signature is known. */
  | { readonly state: 'more'; readonly type?: OutputImageType }
  | { readonly state: 'invalid'; readonly reason: string };

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const MORE = { state: 'more' } as const;

export function readImageHeader(head: Buffer): ImageHeader {
  if (head.length < 4) return MORE;
  if (head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return jpeg(head);
  if (head[0] === 0x89 && head[1] === 0x50) return png(head);
  if (ascii(head, 0) === 'RIFF') return webp(head);
  return invalid('not a PNG, JPEG or WebP image');
}

function png(head: Buffer): ImageHeader {
  if (head.length < 24) return { state: 'more', type: 'png' };
  if (!head.subarray(0, 8).equals(PNG_SIGNATURE) || ascii(head, 12) !== 'IHDR')
    return invalid('a damaged PNG header');
  return sized('png', head.readUInt32BE(16), head.readUInt32BE(20));
}

function webp(head: Buffer): ImageHeader {
  if (head.length < 16) return MORE;
  if (ascii(head, 8) !== 'WEBP') return invalid('a RIFF file that is not WebP');
  const chunk = ascii(head, 12);
  if (chunk === 'VP8 ') {
    if (head.length < 30) return { state: 'more', type: 'webp' };
    if (head[23] !== 0x9d || head[24] !== 0x01 || head[25] !== 0x2a)
      return invalid('a damaged WebP (VP8) header');
    return sized('webp', head.readUInt16LE(26) & 0x3fff, head.readUInt16LE(28) & 0x3fff);
  }
  if (chunk === 'VP8L') {
    if (head.length < 25) return { state: 'more', type: 'webp' };
    if (head[20] !== 0x2f) return invalid('a damaged WebP (VP8L) header');
    const bits = head.readUInt32LE(21);
    return sized('webp', (bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  }
  if (chunk === 'VP8X') {
    if (head.length < 30) return { state: 'more', type: 'webp' };
    return sized('webp', head.readUIntLE(24, 3) + 1, head.readUIntLE(27, 3) + 1);
  }
  return invalid(`an unknown WebP chunk ${JSON.stringify(chunk)}`);
}

/** Start-of-frame markers: baseline, extended, progressive, lossless, arithmetic… (not DHT C4,
 * JPG C8, DAC CC). */
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpeg(head: Buffer): ImageHeader {
  let at = 2;
  for (;;) {
    if (at + 4 > head.length) return { state: 'more', type: 'jpeg' };
    if (head[at] !== 0xff) return invalid('a damaged JPEG marker');
    const marker = head[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return invalid('a JPEG without a frame header');
    if (SOF.has(marker)) {
      if (at + 9 > head.length) return { state: 'more', type: 'jpeg' };
      return sized('jpeg', head.readUInt16BE(at + 7), head.readUInt16BE(at + 5));
    }
    const length = head.readUInt16BE(at + 2);
    if (length < 2) return invalid('a damaged JPEG segment');
    at += 2 + length;
  }
}

function sized(type: OutputImageType, width: number, height: number): ImageHeader {
  if (width <= 0 || height <= 0) return invalid(`a ${type} of ${width}×${height} px`);
  return { state: 'done', type, width, height };
}

function invalid(reason: string): ImageHeader {
  return { state: 'invalid', reason };
}
