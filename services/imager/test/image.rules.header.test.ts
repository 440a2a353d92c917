/** readImageHeader: type and size of generated images from their first bytes only. */
import sharp from 'sharp';
import { readImageHeader } from '../src/domain';
import { blank, noisy } from './support/images';

/** The header read from ever longer prefixes: the size must come out before the file ends. */
function fromPrefixes(file: Buffer): { header: ReturnType<typeof readImageHeader>; needed: number } {
  for (let length = 0; length <= file.length; length += 1) {
    const header = readImageHeader(file.subarray(0, length));
    if (header.state !== 'more') return { header, needed: length };
  }
  throw new Error('the header never completed');
}

describe('readImageHeader', () => {
  it.each([
    ['PNG', () => blank(768, 512).png().toBuffer(), 'png', 24],
    ['baseline JPEG', () => blank(640, 832).jpeg().toBuffer(), 'jpeg', 1024],
    ['progressive JPEG', () => blank(333, 222).jpeg({ progressive: true }).toBuffer(), 'jpeg', 1024],
    ['lossy WebP (VP8)', () => blank(1024, 576).webp({ quality: 80 }).toBuffer(), 'webp', 30],
    ['lossless WebP (VP8L)', () => blank(1001, 999).webp({ lossless: true }).toBuffer(), 'webp', 25],
    ['WebP with alpha (VP8X)', () => blank(700, 300).ensureAlpha(0.5).webp().toBuffer(), 'webp', 30],
  ] as const)('reads %s', async (_what, make, type, atMost) => {
    const file = await make();
    const meta = await sharp(file).metadata();
    const { header, needed } = fromPrefixes(file);
    expect(header).toEqual({ state: 'done', type, width: meta.width, height: meta.height });
    expect(needed).toBeLessThanOrEqual(atMost);
  });

  it('finds a JPEG frame header behind a large EXIF segment', async () => {
    const file = await noisy(300, 200)
      .withExif({ IFD0: { ImageDescription: 'x'.repeat(30_000), Make: 'Phone' } })
      .jpeg()
      .toBuffer();
    const { header, needed } = fromPrefixes(file);
    expect(header).toEqual({ state: 'done', type: 'jpeg', width: 300, height: 200 });
    expect(needed).toBeGreaterThan(30_000);
    expect(needed).toBeLessThan(file.length);
  });

  it('refuses what is not a PNG, JPEG or WebP', async () => {
    expect(readImageHeader(Buffer.from('<html><body>nope</body></html>'))).toMatchObject({
      state: 'invalid',
    });
    expect(readImageHeader(await blank(64, 64).gif().toBuffer())).toMatchObject({ state: 'invalid' });
    expect(readImageHeader(Buffer.from('RIFF\x10\x00\x00\x00WAVEfmt ', 'latin1'))).toMatchObject({
      state: 'invalid',
    });
    const png = await blank(64, 64).png().toBuffer();
    expect(
      readImageHeader(Buffer.concat([png.subarray(0, 12), Buffer.from('JUNK'), png.subarray(16)])),
    ).toMatchObject({ state: 'invalid' });
    expect(readImageHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 8]))).toMatchObject({ state: 'invalid' });
  });

  it('asks for more while the header is incomplete', async () => {
    const png = await blank(64, 64).png().toBuffer();
    expect(readImageHeader(png.subarray(0, 3))).toEqual({ state: 'more' });
    expect(readImageHeader(png.subarray(0, 20))).toEqual({ state: 'more', type: 'png' });
  });
});
