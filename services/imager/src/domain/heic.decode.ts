import { createRequire } from 'node:module';

/** Upright RGBA pixels of a HEIC/HEIF image's primary picture. */
export interface DecodedHeic {
  readonly width: number;
  readonly height: number;
  /** width × height × 4 bytes, RGBA. */
  readonly rgba: Buffer;
}

type HeicDecodeFn = (input: { buffer: Uint8Array }) => Promise<{
  width: number;
  height: number;
  data: Uint8ClampedArray;
}>;

let heicDecode: HeicDecodeFn | undefined;

/**
 * sharp's prebuilt libvips has no HEVC decoder, so HEIC goes through libheif compiled to
 * WebAssembly. heic-convert would re-encode the pixels as JPEG with a pure-JS encoder (twice as
 * slow, and a second lossy generation before our own JPEG); the raw pixels come from heic-decode,
 * the package heic-convert itself uses. It is resolved from heic-convert's location so it is
 * always the copy heic-convert declares, whatever the install layout.
 *
 * libheif applies the HEIF transforms (irot/imir/clap), so the pixels are already upright and
 * EXIF orientation must not be applied again.
 */
export async function decodeHeic(bytes: Buffer): Promise<DecodedHeic> {
  heicDecode ??= createRequire(require.resolve('heic-convert'))('heic-decode') as HeicDecodeFn;
  const { width, height, data } = await heicDecode({ buffer: bytes });
  if (!width || !height || data.length !== width * height * 4) {
    throw new Error(`decoder returned ${data.length} bytes for ${width}×${height}`);
  }
  return { width, height, rgba: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
}
