/** Bounded normalisation: photos fit the long side, upright sRGB JPEGs keep their pixels without
 * their metadata, and decoding stays within the pixel ceiling and the shared memory budget. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import exifr from 'exifr';
import sharp from 'sharp';
import { SharpPhotoCodec, stripJpegMetadata } from '../src/clients/image.client';
import {
  checkPhotos,
  decodeCost,
  DecodeBudget,
  DEFAULT_PHOTO_LIMITS,
  inspectPhoto,
  type IncomingPhoto,
  type InspectResult,
  type NormalisedPhoto,
  type PhotoDeps,
} from '../src/domain';
import { blank, halves, noisy, rgbAt } from './support/images';
import { inspect } from './support/photos';

const HEIC_FIXTURE = join(__dirname, 'fixtures', 'photo-768x576.heic');
const MiB = 1024 * 1024;

function passed(result: InspectResult): NormalisedPhoto {
  if (!result.ok) throw new Error(`expected the photo to pass, got ${JSON.stringify(result.problems)}`);
  return result.photo;
}

function codes(result: InspectResult): string[] {
  return result.ok ? [] : result.problems.map((problem) => problem.code);
}

/** What an independent EXIF reader finds in a file: EXIF, GPS, XMP, IPTC, ICC. */
async function metadataFound(jpeg: Buffer): Promise<unknown> {
  return exifr.parse(jpeg, { tiff: true, exif: true, gps: true, xmp: true, iptc: true, icc: true });
}

function segment(marker: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt16BE(0xff00 | marker, 0);
  header.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([header, payload]);
}

/** `jpeg` with segments inserted right after SOI and bytes appended after EOI. */
function withSegments(jpeg: Buffer, segments: Buffer[], trailer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2), trailer]);
}

async function pixels(jpeg: Buffer): Promise<Buffer> {
  return sharp(jpeg).raw().toBuffer();
}

/** A PNG of a few hundred bytes whose header declares width × height (a decompression bomb). */
function pngDeclaring(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = zlib.deflateSync(Buffer.alloc(64 * 1024)); // the start of an all-black image
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', rows),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The HEIC fixture with its image size property (ispe) rewritten. */
function heicDeclaring(width: number, height: number): Buffer {
  const bytes = Buffer.from(readFileSync(HEIC_FIXTURE));
  const at = bytes.indexOf('ispe');
  bytes.writeUInt32BE(width, at + 8);
  bytes.writeUInt32BE(height, at + 12);
  return bytes;
}

/** Records the longest queue of decodes waiting for room. */
class WatchedBudget extends DecodeBudget {
  mostQueued = 0;

  override acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const granted = super.acquire(bytes, signal);
    this.mostQueued = Math.max(this.mostQueued, this.queued);
    return granted;
  }
}

describe('photos fit the long side', () => {
  it('scales a 4000×3000 JPEG to 2048×1536 and a 3000×4000 PNG to 1536×2048', async () => {
    const jpeg = passed(
      await inspect({ index: 0, file: 'big.jpg', bytes: await halves(4000, 3000).jpeg().toBuffer() }),
    );
    expect([jpeg.width, jpeg.height]).toEqual([2048, 1536]);
    const meta = await sharp(jpeg.jpeg).metadata();
    expect([meta.width, meta.height]).toEqual([2048, 1536]);
    const png = passed(
      await inspect({ index: 0, file: 'big.png', bytes: await halves(3000, 4000).png().toBuffer() }),
    );
    expect([png.width, png.height]).toEqual([1536, 2048]);
  });

  it('takes the long side from the limits', async () => {
    const photo = passed(
      await inspect(
        { index: 0, file: 'x.jpg', bytes: await noisy(1600, 1200).jpeg().toBuffer() },
        { ...DEFAULT_PHOTO_LIMITS, maxSide: 1024 },
      ),
    );
    expect([photo.width, photo.height]).toEqual([1024, 768]);
  });

  it('turns an EXIF-rotated 4000×3000 photo upright at 1536×2048, without EXIF or GPS', async () => {
    const bytes = await halves(4000, 3000)
      .withExif({ IFD0: { Make: 'Phone' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    expect(await exifr.gps(bytes)).toBeDefined(); // the reader does see GPS in the upload
    const photo = passed(await inspect({ index: 0, file: 'rotated.jpg', bytes }));
    expect([photo.width, photo.height]).toEqual([1536, 2048]);
    expect(await metadataFound(photo.jpeg)).toBeUndefined();
    // Orientation 6 turns the red left half to the top.
    const [topR, , topB] = await rgbAt(photo.jpeg, 768, 300);
    const [bottomR, , bottomB] = await rgbAt(photo.jpeg, 768, 1700);
    expect([topR > 200, topB < 50, bottomR < 50, bottomB > 200]).toEqual([true, true, true, true]);
  });
});

describe('an upright sRGB JPEG within the long side', () => {
  const exif = {
    IFD0: { Make: 'Phone', Model: 'X', Artist: 'Jane Doe' },
    IFD3: {
      GPSLatitudeRef: 'N',
      GPSLatitude: '51/1 30/1 0/1',
      GPSLongitudeRef: 'W',
      GPSLongitude: '0/1 7/1 0/1',
    },
  };
  const xmp =
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
    '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Jane Doe"/></rdf:RDF></x:xmpmeta>';

  it('keeps its pixels byte for byte and loses EXIF, GPS, XMP, IPTC, comments and trailers', async () => {
    const original = await noisy(1200, 900).withExif(exif).withXmp(xmp).jpeg({ quality: 85 }).toBuffer();
    const iptc = segment(
      0xed,
      Buffer.from('Photoshop 3.0\0' + '8BIM\x04\x04\0\0\0\0\0\x10\x1c\x02\x50\0\x0aJane Doe!!', 'latin1'),
    );
    const comment = segment(0xfe, Buffer.from('taken at 12 Secret Street', 'latin1'));
    const trailer = Buffer.from('MotionPhoto_Data: a video after the image', 'latin1');
    const bytes = withSegments(original, [iptc, comment], trailer);
    expect(await exifr.gps(bytes)).toMatchObject({ latitude: expect.any(Number) });

    const photo = passed(await inspect({ index: 0, file: 'phone.jpg', bytes }));
    expect([photo.width, photo.height]).toEqual([1200, 900]);
    expect(await metadataFound(photo.jpeg)).toBeUndefined();
    expect(await exifr.gps(photo.jpeg)).toBeUndefined();
    for (const secret of ['Jane Doe', 'Secret Street', 'MotionPhoto', 'Exif\0', 'http://ns.adobe.com/xap']) {
      expect(photo.jpeg.includes(Buffer.from(secret, 'latin1'))).toBe(false);
    }
    // Not re-encoded: the same decoded pixels, and nothing larger than the upload.
    expect((await pixels(photo.jpeg)).equals(await pixels(original))).toBe(true);
    expect(photo.jpeg.length).toBeLessThan(bytes.length);
    expect(photo.jpeg.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9]));
  });

  it('removes only the metadata segments: the rest of the file is the uploaded bytes', () => {
    const soi = Buffer.from([0xff, 0xd8]);
    const jfif = segment(0xe0, Buffer.from('JFIF\0\x01\x01\0\0\x01\0\x01\0\0', 'latin1'));
    const exifSegment = segment(0xe1, Buffer.from('Exif\0\0secret', 'latin1'));
    const adobe = segment(0xee, Buffer.from('Adobe\0\x64\0\0\0\0\x01', 'latin1'));
    const dqt = segment(0xdb, Buffer.alloc(65, 1));
    const sos = segment(0xda, Buffer.from([1, 1, 0, 0, 0x3f, 0]));
    // Scan data with a stuffed 0xFF00 and a restart marker, which do not end the scan.
    const scan = Buffer.from([0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56]);
    const eoi = Buffer.from([0xff, 0xd9]);
    const file = Buffer.concat([
      soi,
      jfif,
      exifSegment,
      adobe,
      dqt,
      segment(0xfe, Buffer.from('c')),
      sos,
      scan,
      eoi,
    ]);
    expect(stripJpegMetadata(file)).toEqual(Buffer.concat([soi, jfif, adobe, dqt, sos, scan, eoi]));
  });

  it('is re-encoded when it carries another colour profile, and loses that profile', async () => {
    const bytes = await noisy(1000, 800).withIccProfile('p3').jpeg().toBuffer();
    const photo = passed(await inspect({ index: 0, file: 'p3.jpg', bytes }));
    const meta = await sharp(photo.jpeg).metadata();
    expect(meta.icc).toBeUndefined();
    expect(meta.space).toBe('srgb');
    expect((await pixels(photo.jpeg)).equals(await pixels(bytes))).toBe(false);
  });
});

describe('decoding is bounded', () => {
  it('refuses a 50 000 × 50 000 PNG of a few hundred bytes as too_large, from its header', async () => {
    const bomb = pngDeclaring(50_000, 50_000);
    expect(bomb.length).toBeLessThan(1024);
    const result = await inspect({ index: 0, file: 'bomb.png', bytes: bomb });
    expect(result).toEqual({
      ok: false,
      problems: [
        {
          index: 0,
          file: 'bomb.png',
          code: 'too_large',
          detail: '50000×50000 px; a photo may have at most 40 megapixels',
        },
      ],
    });
  });

  it('refuses a HEIC whose primary image is larger than the ceiling, before decoding it', async () => {
    expect(
      codes(await inspect({ index: 0, file: 'huge.heic', bytes: heicDeclaring(50_000, 50_000) })),
    ).toEqual(['too_large']);
    // The ceiling is configurable: the real 768×576 fixture is over a 0.4 MP one.
    const heic = readFileSync(HEIC_FIXTURE);
    const limits = { ...DEFAULT_PHOTO_LIMITS, maxPixels: 400_000 };
    expect(codes(await inspect({ index: 0, file: 'x.heic', bytes: heic }, limits))).toEqual(['too_large']);
    expect(codes(await inspect({ index: 0, file: 'x.heic', bytes: heic }))).toEqual([]);
  });

  it('decodes the HEIC image that was checked: a header that lies about it is undecodable', async () => {
    const lying = heicDeclaring(800, 600); // the coded image is 768×576
    expect(codes(await inspect({ index: 0, file: 'lying.heic', bytes: lying }))).toEqual(['undecodable']);
  });

  it('refuses a photo whose decode would need more than the whole budget as too_large', async () => {
    const deps: PhotoDeps = { codec: new SharpPhotoCodec(), budget: new DecodeBudget(16 * MiB) };
    const heic = readFileSync(HEIC_FIXTURE); // 768×576 × 16 B + 8 MiB > 16 MiB
    expect(decodeCost('heic', 768, 576, 2048)).toBeGreaterThan(16 * MiB);
    const result = await inspectPhoto({ index: 0, file: 'x.heic', bytes: heic }, DEFAULT_PHOTO_LIMITS, deps);
    expect(result).toEqual({
      ok: false,
      problems: [
        expect.objectContaining({
          code: 'too_large',
          detail: expect.stringContaining('of memory to decode'),
        }),
      ],
    });
  });

  it('makes 4 concurrent uploads share one budget: they wait, never exceed it, and all pass', async () => {
    const limits = { ...DEFAULT_PHOTO_LIMITS, minCount: 1 };
    const cost = decodeCost('png', 1600, 1200, limits.maxSide);
    const budget = new WatchedBudget(Math.floor(cost * 1.5)); // room for one decode at a time
    const deps: PhotoDeps = { codec: new SharpPhotoCodec(), budget };
    const uploads = await Promise.all(
      [0, 1, 2, 3].map(async (u) =>
        Promise.all(
          [0, 1].map(async (i): Promise<IncomingPhoto> => ({
            index: i,
            file: `${u}-${i}.png`,
            bytes: await blank(1600, 1200, u * 2 + i)
              .png()
              .toBuffer(),
          })),
        ),
      ),
    );
    const results = await Promise.all(
      uploads.map((photos) =>
        checkPhotos(photos, { limits, concurrency: 2, inspect: (photo, l) => inspectPhoto(photo, l, deps) }),
      ),
    );
    expect(results.map((r) => [r.problems.length, r.photos.length])).toEqual([
      [0, 2],
      [0, 2],
      [0, 2],
      [0, 2],
    ]);
    expect(budget.peak).toBe(cost);
    expect(budget.inUse).toBe(0);
    expect(budget.mostQueued).toBeGreaterThan(0);
  });

  it('stops waiting for the budget when the upload is cancelled', async () => {
    const budget = new DecodeBudget(100);
    const release = await budget.acquire(80);
    const cancel = new AbortController();
    const waiting = budget.acquire(50, cancel.signal);
    const behind = budget.acquire(10);
    cancel.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    (await behind)(); // the one behind the cancelled waiter got its turn
    release();
    expect(budget.inUse).toBe(0);
  });
});
