import sharp from 'sharp';
import { DecodeError, type EncodedPhoto, type ImageType, type PhotoCodec, type PhotoHeader } from '../domain';
import { decodeHeic } from './heic.client';

const JPEG_QUALITY = 92;

// Every photo is decoded once: libvips' operation cache (up to 50 MiB and 100 operations by
// default) would only hold on to memory the next upload needs.
sharp.cache(false);

/**
 * 'error' rejects truncated or corrupt pixel data (a half-grey training photo is worse than a
 * refusal) but, unlike sharp's default 'warning', accepts files whose decoder only warned, as
 * many phones' and editors' JPEGs do while displaying fine everywhere.
 */
const FAIL_ON = 'error' as const;

/**
 * The photo codec over sharp (libvips) and, for HEIC, libheif in WebAssembly (see heic.client).
 *
 * Memory: every decode is bounded by `limitInputPixels` and sized to its output. JPEG and WebP
 * load shrunk (libjpeg's DCT scaling, libwebp's scaled decode) and stream through the resize in
 * sequential mode; EXIF orientation is applied after the resize, to the scaled image, so a
 * rotated 12 MP photo is never held whole either.
 */
export class SharpPhotoCodec implements PhotoCodec {
  async readHeader(bytes: Buffer): Promise<PhotoHeader> {
    let meta: sharp.Metadata;
    try {
      // Headers only: the pixel ceiling is the domain's check, before anything is decoded.
      meta = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
    } catch (error) {
      throw new DecodeError(messageOf(error));
    }
    const isJpeg = meta.format === 'jpeg';
    return {
      width: meta.width,
      height: meta.height,
      // libheif applies the HEIF transforms (irot/imir) itself: its pixels are upright already.
      orientation: meta.format === 'heif' ? 1 : (meta.orientation ?? 1),
      channels: meta.channels,
      space: meta.space,
      profile: meta.icc ? (iccDescribesSrgb(meta.icc) ? 'srgb' : 'other') : 'none',
      plainJpeg: isJpeg && isPlainJpeg(bytes),
    };
  }

  async normalise(
    bytes: Buffer,
    type: ImageType,
    header: PhotoHeader,
    options: { maxSide: number; maxPixels: number },
  ): Promise<EncodedPhoto> {
    try {
      const image =
        type === 'heic'
          ? await openHeic(bytes, header, options.maxPixels)
          : sharp(bytes, { failOn: FAIL_ON, limitInputPixels: options.maxPixels }).autoOrient();
      // Without keepMetadata/withMetadata sharp writes no EXIF, XMP, IPTC or ICC, and converts
      // embedded profiles (Display P3, CMYK…) to sRGB first.
      const { data, info } = await image
        .resize({ width: options.maxSide, height: options.maxSide, fit: 'inside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' }) // transparent cut-outs become white, not black
        .toColourspace('srgb')
        .jpeg({ quality: JPEG_QUALITY, mozjpeg: false })
        .toBuffer({ resolveWithObject: true });
      return { jpeg: data, width: info.width, height: info.height };
    } catch (error) {
      throw new DecodeError(messageOf(error));
    }
  }

  async stripJpeg(bytes: Buffer, header: PhotoHeader): Promise<EncodedPhoto> {
    let jpeg: Buffer;
    try {
      jpeg = stripJpegMetadata(bytes);
      // Every coefficient is entropy-decoded even at 1/8 scale, so a truncated or corrupt scan
      // fails here as it would in a full decode, at a fraction of the memory and time.
      await sharp(jpeg, { failOn: FAIL_ON, limitInputPixels: header.width * header.height })
        .resize({ width: Math.max(1, Math.floor(header.width / 9)) })
        .raw()
        .toBuffer();
    } catch (error) {
      throw new DecodeError(messageOf(error));
    }
    return { jpeg, width: header.width, height: header.height };
  }
}

async function openHeic(bytes: Buffer, header: PhotoHeader, maxPixels: number): Promise<sharp.Sharp> {
  const { width, height, rgba } = await decodeHeic(bytes, {
    maxPixels,
    expected: { width: header.width, height: header.height },
  });
  return sharp(rgba, { raw: { width, height, channels: 4 }, limitInputPixels: maxPixels });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------------------------
// JPEG segments

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const APP0 = 0xe0;
const APP14 = 0xee;
const COM = 0xfe;
/** Huffman-coded baseline, extended and progressive frames: what every decoder reads. */
const PLAIN_SOF = new Set([0xc0, 0xc1, 0xc2]);
const ANY_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
/** A JFIF APP0 without a thumbnail: "JFIF\0", version, units, densities, 0×0 thumbnail. */
const JFIF_NO_THUMBNAIL_LENGTH = 16;

class MalformedJpeg extends Error {}

interface Segment {
  readonly marker: number;
  /** From the 0xFF of the marker to the end of the segment (and of its scan data after SOS). */
  readonly start: number;
  readonly end: number;
  /** Where the segment's own bytes end (before any scan data). */
  readonly headerEnd: number;
}

/**
 * The segments of a JPEG up to its EOI. Anything after the EOI (a second image of an MPF file,
 * a phone maker's trailer, a motion photo's video) is not returned.
 */
function* segments(jpeg: Buffer): Generator<Segment> {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== SOI) throw new MalformedJpeg('not a JPEG');
  let at = 2;
  for (;;) {
    if (at + 2 > jpeg.length) throw new MalformedJpeg('the file is truncated: it ends before its EOI marker');
    if (jpeg[at] !== 0xff) throw new MalformedJpeg('a damaged JPEG marker');
    let start = at;
    while (jpeg[at + 1] === 0xff) at += 1; // fill bytes
    start = at;
    if (at + 2 > jpeg.length) throw new MalformedJpeg('the file is truncated: it ends before its EOI marker');
    const marker = jpeg[at + 1]!;
    if (marker === EOI) {
      yield { marker, start, end: at + 2, headerEnd: at + 2 };
      return;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      yield { marker, start, end: at + 2, headerEnd: at + 2 };
      at += 2;
      continue;
    }
    if (at + 4 > jpeg.length) throw new MalformedJpeg('the file is truncated inside a segment');
    const length = jpeg.readUInt16BE(at + 2);
    const headerEnd = at + 2 + length;
    if (length < 2 || headerEnd > jpeg.length)
      throw new MalformedJpeg('the file is truncated inside a segment');
    at = headerEnd;
    if (marker === SOS) {
      // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a restart.
      for (;;) {
        const ff = jpeg.indexOf(0xff, at);
        if (ff < 0 || ff + 1 >= jpeg.length) throw new MalformedJpeg('the file is truncated inside a scan');
        const next = jpeg[ff + 1]!;
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) at = ff + 2;
        else if (next === 0xff) at = ff + 1;
        else {
          at = ff;
          break;
        }
      }
    }
    yield { marker, start, end: at, headerEnd };
  }
}

/**
 * The JPEG with only what decoding needs: frame, tables, restart interval, scans, and two small
 * APPn segments that change how pixels are read — a thumbnail-free JFIF APP0 (pixel density only)
 * and Adobe's APP14 (its transform flag tells RGB from YCbCr; dropping it can change the colours).
 *
 * Removed: every other APPn — APP1 EXIF (GPS, camera, dates, thumbnail) and XMP, APP2 ICC and
 * MPF, APP13 IPTC/Photoshop, makers' segments —, comments, JFXX thumbnails, and everything after
 * EOI. The ICC profile goes too: a JPEG passes through only without one or with an sRGB one, and
 * a decoder reading no profile assumes sRGB, so the pixels mean the same.
 *
 * The entropy-coded data is copied byte for byte: the pixels are those uploaded.
 */
export function stripJpegMetadata(jpeg: Buffer): Buffer {
  const kept: Buffer[] = [jpeg.subarray(0, 2)];
  for (const segment of segments(jpeg)) {
    if (keepSegment(jpeg, segment)) kept.push(jpeg.subarray(segment.start, segment.end));
  }
  return Buffer.concat(kept);
}

function keepSegment(jpeg: Buffer, { marker, start, headerEnd }: Segment): boolean {
  if (marker === APP0) {
    return (
      headerEnd - start - 2 === JFIF_NO_THUMBNAIL_LENGTH &&
      jpeg.toString('latin1', start + 4, start + 9) === 'JFIF\0'
    );
  }
  if (marker === APP14) return jpeg.toString('latin1', start + 4, start + 9) === 'Adobe';
  if (marker >= 0xe1 && marker <= 0xef) return false; // APP1–APP15
  if (marker === COM) return false;
  if (marker >= 0xf0 && marker <= 0xfd) return false; // JPEG extensions (JPG0–JPG13)
  return true;
}

/** An 8-bit Huffman-coded baseline or progressive frame; arithmetic, lossless, hierarchical and
 * 12-bit JPEGs are re-encoded, since not every trainer's decoder reads them. */
function isPlainJpeg(jpeg: Buffer): boolean {
  try {
    for (const segment of segments(jpeg)) {
      if (ANY_SOF.has(segment.marker)) {
        return PLAIN_SOF.has(segment.marker) && jpeg[segment.start + 4] === 8;
      }
      if (segment.marker === SOS) return false;
    }
  } catch {
    // Damaged: the decode will say so.
  }
  return false;
}

/**
 * Whether an ICC profile describes sRGB, by its description tag ('desc' in v2 profiles, 'mluc' in
 * v4): "sRGB IEC61966-2.1", "sRGB built-in", "sRGB v4 ICC preference"… Anything else is treated as
 * another colour space and converted.
 */
function iccDescribesSrgb(icc: Buffer): boolean {
  try {
    const count = icc.readUInt32BE(128);
    for (let i = 0; i < count; i += 1) {
      const entry = 132 + i * 12;
      if (icc.toString('latin1', entry, entry + 4) !== 'desc') continue;
      const offset = icc.readUInt32BE(entry + 4);
      const type = icc.toString('latin1', offset, offset + 4);
      let text = '';
      if (type === 'desc') {
        const length = icc.readUInt32BE(offset + 8);
        text = icc.toString('latin1', offset + 12, offset + 12 + length);
      } else if (type === 'mluc') {
        const length = icc.readUInt32BE(offset + 20);
        const at = offset + icc.readUInt32BE(offset + 24);
        text = Buffer.from(icc.subarray(at, at + length))
          .swap16()
          .toString('utf16le');
      }
      return /\bsRGB\b/i.test(text);
    }
  } catch {
    // A profile too short for its own tag table.
  }
  return false;
}
