import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { DEFAULT_PHOTO_LIMITS, type InspectResult, type NormalisedPhoto } from '../src/domain';
import { inspect as inspectPhoto } from './support/photos';
import {
  blank,
  EXIF_TAG_GPS_IFD,
  EXIF_TAG_ORIENTATION,
  exifIfd0Tags,
  halves,
  jpeg,
  noisy,
  rgbAt,
} from './support/images';

const HEIC_FIXTURE = join(__dirname, 'fixtures', 'photo-768x576.heic');

function passed(result: InspectResult): NormalisedPhoto {
  if (!result.ok) throw new Error(`expected the photo to pass, got ${JSON.stringify(result.problems)}`);
  return result.photo;
}

function codes(result: InspectResult): string[] {
  return result.ok ? [] : result.problems.map((problem) => problem.code);
}

async function expectCleanJpeg(output: Buffer): Promise<void> {
  const meta = await sharp(output).metadata();
  expect(meta.format).toBe('jpeg');
  expect(meta.space).toBe('srgb');
  expect(meta.exif).toBeUndefined();
  expect(meta.orientation).toBeUndefined();
  expect(meta.icc).toBeUndefined();
  expect(meta.xmp).toBeUndefined();
  expect(meta.iptc).toBeUndefined();
  // No APP1 (EXIF/XMP) or APP2 (ICC) segment at all, whatever sharp's parser reports.
  expect(output.includes(Buffer.from('Exif\0', 'latin1'))).toBe(false);
  expect(output.includes(Buffer.from('ICC_PROFILE', 'latin1'))).toBe(false);
}

describe('inspectPhoto', () => {
  it('normalises a JPEG and hashes the original bytes', async () => {
    const bytes = await jpeg(640, 512);
    const photo = passed(await inspectPhoto({ index: 3, file: 'me.jpg', bytes }));
    expect(photo).toMatchObject({ index: 3, file: 'me.jpg', width: 640, height: 512 });
    expect(photo.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    await expectCleanJpeg(photo.jpeg);
  });

  it.each([
    ['png', () => blank(700, 600).png().toBuffer()],
    ['webp', () => blank(700, 600).webp().toBuffer()],
    ['avif', () => blank(700, 600).avif({ effort: 0 }).toBuffer()],
  ] as const)('converts %s to JPEG', async (_type, make) => {
    const photo = passed(await inspectPhoto({ index: 0, file: 'x', bytes: await make() }));
    expect([photo.width, photo.height]).toEqual([700, 600]);
    await expectCleanJpeg(photo.jpeg);
  });

  it('decodes HEIC through WebAssembly, since sharp cannot decode HEVC', async () => {
    const bytes = readFileSync(HEIC_FIXTURE);
    await expect(sharp(bytes).toBuffer()).rejects.toThrow(); // the reason for the detour
    const photo = passed(await inspectPhoto({ index: 0, file: 'IMG_0001.HEIC', bytes }));
    expect([photo.width, photo.height]).toEqual([768, 576]);
    await expectCleanJpeg(photo.jpeg);
    // The fixture has a red disc centred at (250, 260) on a gradient.
    const [r, g, b] = await rgbAt(photo.jpeg, 250, 260);
    expect(r).toBeGreaterThan(150);
    expect(g).toBeLessThan(100);
    expect(b).toBeLessThan(100);
  });

  it('turns an EXIF orientation 6 photo upright and drops EXIF, GPS and the ICC profile', async () => {
    const bytes = await halves(1200, 800)
      .withIccProfile('p3')
      .withExif({ IFD0: { Make: 'Phone' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    const input = await sharp(bytes).metadata();
    expect(input.orientation).toBe(6);
    expect(input.icc).toBeDefined();
    expect(exifIfd0Tags(input.exif!)).toEqual(
      expect.arrayContaining([EXIF_TAG_ORIENTATION, EXIF_TAG_GPS_IFD]),
    );

    const photo = passed(await inspectPhoto({ index: 0, file: 'rotated.jpg', bytes }));
    expect([photo.width, photo.height]).toEqual([800, 1200]);
    await expectCleanJpeg(photo.jpeg);
    // Orientation 6 means "turn 90° clockwise": the red left half ends up on top.
    const [topR, , topB] = await rgbAt(photo.jpeg, 400, 200);
    const [bottomR, , bottomB] = await rgbAt(photo.jpeg, 400, 1000);
    expect(topR).toBeGreaterThan(200);
    expect(topB).toBeLessThan(50);
    expect(bottomR).toBeLessThan(50);
    expect(bottomB).toBeGreaterThan(200);
  });

  it('measures the minimum side upright: 600×400 with orientation 6 is judged as 400×600', async () => {
    const bytes = await blank(600, 400).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const result = await inspectPhoto(
      { index: 0, file: 'r.jpg', bytes },
      { ...DEFAULT_PHOTO_LIMITS, minSide: 500 },
    );
    expect(result).toEqual({
      ok: false,
      problems: [
        {
          index: 0,
          file: 'r.jpg',
          code: 'too_small',
          detail: '400×600 px; both sides must be at least 500 px',
        },
      ],
    });
  });

  it('flattens transparency onto white rather than black', async () => {
    const bytes = await sharp({
      create: { width: 512, height: 512, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    const photo = passed(await inspectPhoto({ index: 0, file: 'cutout.png', bytes }));
    expect(await rgbAt(photo.jpeg, 10, 10)).toEqual([255, 255, 255]);
  });

  it('reports a 300×300 photo as too small', async () => {
    const result = await inspectPhoto({ index: 2, file: 'tiny.jpg', bytes: await jpeg(300, 300) });
    expect(result).toEqual({
      ok: false,
      problems: [
        {
          index: 2,
          file: 'tiny.jpg',
          code: 'too_small',
          detail: '300×300 px; both sides must be at least 512 px',
        },
      ],
    });
  });

  it('reports a text file named .jpg as an unsupported type', async () => {
    const bytes = Buffer.from('definitely not a photo\n'.repeat(100));
    expect(codes(await inspectPhoto({ index: 0, file: 'notes.jpg', bytes }))).toEqual(['unsupported_type']);
  });

  it('reports an empty file as empty and nothing else', async () => {
    expect(codes(await inspectPhoto({ index: 0, file: 'empty.jpg', bytes: Buffer.alloc(0) }))).toEqual([
      'empty_file',
    ]);
  });

  it('reports a truncated JPEG as undecodable although its header is intact', async () => {
    const whole = await noisy(800, 600).jpeg().toBuffer();
    const bytes = whole.subarray(0, Math.floor(whole.length * 0.6));
    expect((await sharp(bytes).metadata()).width).toBe(800);
    const result = await inspectPhoto({ index: 1, file: 'cut.jpg', bytes });
    expect(result).toEqual({
      ok: false,
      problems: [
        expect.objectContaining({
          index: 1,
          code: 'undecodable',
          detail: expect.stringContaining('truncated'),
        }),
      ],
    });
  });

  it('reports garbage after a valid signature as undecodable', async () => {
    const bytes = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      Buffer.alloc(2000, 7),
    ]);
    expect(codes(await inspectPhoto({ index: 0, file: 'x.png', bytes }))).toEqual(['undecodable']);
    const heic = readFileSync(HEIC_FIXTURE);
    const cut = heic.subarray(0, heic.length - 2000);
    expect(codes(await inspectPhoto({ index: 0, file: 'cut.heic', bytes: cut }))).toEqual(['undecodable']);
  });

  it('reports both a too large file and its unsupported type, without decoding', async () => {
    const limits = { ...DEFAULT_PHOTO_LIMITS, maxFileBytes: 1000 };
    const result = await inspectPhoto({ index: 4, file: 'big.txt', bytes: Buffer.alloc(1500, 'a') }, limits);
    expect(result).toEqual({
      ok: false,
      problems: [
        expect.objectContaining({ code: 'unsupported_type', index: 4, file: 'big.txt' }),
        {
          code: 'file_too_large',
          index: 4,
          file: 'big.txt',
          detail: '1.5 KiB; each photo may be at most 1000 B',
        },
      ],
    });
  });
});
