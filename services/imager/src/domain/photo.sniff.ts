/** The image types customers may upload. Anything else is refused before a decoder sees it, so
 * sharp's other loaders (SVG, PDF, TIFF, GIF…) are never reachable from an upload. */
export type ImageType = 'jpeg' | 'png' | 'webp' | 'heic' | 'avif';

/** How many leading bytes `sniffImageType` looks at; an ftyp box with many brands may need them. */
export const SNIFF_HEAD_BYTES = 64;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

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
