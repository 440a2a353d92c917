import sharp from 'sharp';

/** A flat colour per seed keeps files tiny while giving every photo its own bytes. */
export function colourFor(seed: number): { r: number; g: number; b: number } {
  return { r: (seed * 67) % 256, g: (seed * 131 + 40) % 256, b: (seed * 29 + 90) % 256 };
}

export function blank(width: number, height: number, seed = 1): sharp.Sharp {
  return sharp({ create: { width, height, channels: 3, background: colourFor(seed) } });
}

/** Noise does not compress, so a cut-off file loses real image data. */
export function noisy(width: number, height: number): sharp.Sharp {
  const noise = { type: 'gaussian' as const, mean: 128, sigma: 40 };
  return sharp({ create: { width, height, channels: 3, background: '#808080', noise } });
}

export function jpeg(width: number, height: number, seed = 1): Promise<Buffer> {
  return blank(width, height, seed).jpeg().toBuffer();
}

/** Left half red, right half blue: shows which way an image was turned. */
export function halves(width: number, height: number): sharp.Sharp {
  const blue = { create: { width: width / 2, height, channels: 3 as const, background: '#0000ff' } };
  return sharp({ create: { width, height, channels: 3, background: '#ff0000' } }).composite([
    { input: blue, left: width / 2, top: 0 },
  ]);
}

export async function rgbAt(image: Buffer, x: number, y: number): Promise<[number, number, number]> {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [data[at]!, data[at + 1]!, data[at + 2]!];
}

/** Tags of the first IFD of a TIFF-style EXIF block ("Exif\0\0" + TIFF header). */
export function exifIfd0Tags(exif: Buffer): number[] {
  const tiff = exif.subarray(6);
  const little = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (at: number): number => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number): number => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const ifd = u32(4);
  const tags: number[] = [];
  for (let i = 0; i < u16(ifd); i += 1) tags.push(u16(ifd + 2 + i * 12));
  return tags;
}

export const EXIF_TAG_ORIENTATION = 0x0112;
export const EXIF_TAG_GPS_IFD = 0x8825;
