/** PackTrainingImages through a real imager gRPC server and the jest stack's bucket. */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { status } from '@grpc/grpc-js';
import JSZip from 'jszip';
import sharp from 'sharp';
import exifr from 'exifr';
import { blank, halves, jpeg, noisy, rgbAt } from './support/images';
import {
  failure,
  pack,
  sendFile,
  startTestImager,
  testBucket,
  type TestBucket,
  type TestImager,
  type UploadFile,
} from './support/imager.harness';

const HEIC_FIXTURE = join(__dirname, 'fixtures', 'photo-768x576.heic');

/** A PNG of a few hundred bytes whose header declares width × height. */
async function pngBomb(width: number, height: number): Promise<Buffer> {
  const png = await blank(64, 64).png().toBuffer();
  const ihdr = png.indexOf('IHDR');
  const bomb = Buffer.from(png);
  bomb.writeUInt32BE(width, ihdr + 4);
  bomb.writeUInt32BE(height, ihdr + 8);
  bomb.writeUInt32BE(zlib.crc32(bomb.subarray(ihdr, ihdr + 17)), ihdr + 17);
  return bomb;
}

interface CentralEntry {
  name: string;
  method: number;
  size: number;
  offset: number;
}

/** The archive's own central directory, read without any zip library. */
function centralDirectory(zip: Buffer): CentralEntry[] {
  const end = zip.length - 22;
  expect(zip.readUInt32LE(end)).toBe(0x06054b50);
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries: CentralEntry[] = [];
  for (let i = 0; i < count; i += 1) {
    expect(zip.readUInt32LE(at)).toBe(0x02014b50);
    const nameLength = zip.readUInt16LE(at + 28);
    entries.push({
      name: zip.toString('utf8', at + 46, at + 46 + nameLength),
      method: zip.readUInt16LE(at + 10),
      size: zip.readUInt32LE(at + 24),
      offset: zip.readUInt32LE(at + 42),
    });
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  expect(at).toBe(end);
  return entries;
}

async function sixPhotos(): Promise<UploadFile[]> {
  return [
    { name: 'a.jpg', bytes: await jpeg(640, 560, 1) },
    {
      name: 'b.png',
      bytes: await sharp(await jpeg(700, 600, 2))
        .png()
        .toBuffer(),
      contentType: 'image/png',
    },
    {
      // Stored 1200×800 sideways with EXIF orientation 6 and a GPS position.
      name: 'rotated.jpg',
      bytes: await halves(1200, 800)
        .withExif({ IFD0: { Make: 'Phone' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } })
        .withMetadata({ orientation: 6 })
        .jpeg()
        .toBuffer(),
    },
    { name: 'IMG_0001.HEIC', bytes: readFileSync(HEIC_FIXTURE), contentType: 'image/heic' },
    {
      name: 'e.webp',
      bytes: await sharp(await jpeg(600, 800, 5))
        .webp()
        .toBuffer(),
      contentType: 'image/webp',
    },
    {
      // Upright sRGB within the long side: kept as uploaded, without its EXIF and GPS.
      name: 'f.jpg',
      bytes: await blank(900, 600, 6)
        .withExif({ IFD0: { Make: 'Phone' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 0/1' } })
        .jpeg()
        .toBuffer(),
    },
  ];
}

describe('PackTrainingImages', () => {
  let imager: TestImager;
  let bucket: TestBucket;

  beforeAll(async () => {
    imager = await startTestImager();
    bucket = testBucket();
  });

  afterAll(async () => {
    await imager?.stop();
    bucket?.close();
  });

  it('packs 6 photos into a stored zip of upright, metadata-free JPEGs in the bucket', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const bytesBefore = await imager.transferBytes('dataset');
    const before = Date.now();

    const res = await pack(
      imager.client,
      { accountId, datasetId, minImages: 5, maxImages: 30 },
      await sixPhotos(),
    );

    const key = `datasets/${accountId}/${datasetId}.zip`;
    expect(res.problems).toEqual([]);
    expect(res).toMatchObject({ datasetKey: key, images: 6 });
    // Valid as long as configured (6 h), which outlives the trainer's 2 h training timeout.
    const ttlMs = imager.config.DATASET_URL_TTL_S * 1000;
    expect(res.urlExpiresAt!.getTime()).toBeGreaterThanOrEqual(before + ttlMs - 1000);
    expect(res.urlExpiresAt!.getTime()).toBeLessThanOrEqual(Date.now() + ttlMs + 1000);
    expect(new URL(res.datasetUrl).searchParams.get('X-Amz-Expires')).toBe(
      String(imager.config.DATASET_URL_TTL_S),
    );

    const stored = await bucket.get(key);
    expect(stored.length).toBe(res.zipBytes);
    expect(await bucket.head(key)).toMatchObject({ contentType: 'application/zip' });
    // The presigned URL is what the trainer hands to Replicate: it must serve the same bytes.
    const download = await fetch(res.datasetUrl);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(stored)).toBe(true);
    expect((await imager.transferBytes('dataset')) - bytesBefore).toBe(res.zipBytes);

    const entries = centralDirectory(stored);
    // Entries go in as their checks finish; the names follow the upload order.
    expect(entries.map((e) => e.name).sort()).toEqual([
      'photo-01.jpg',
      'photo-02.jpg',
      'photo-03.jpg',
      'photo-04.jpg',
      'photo-05.jpg',
      'photo-06.jpg',
    ]);
    for (const entry of entries) {
      expect(entry.method).toBe(0); // STORED
      expect(stored.readUInt16LE(entry.offset + 8)).toBe(0);
    }

    const zip = await JSZip.loadAsync(stored, { checkCRC32: true });
    const sizes: Record<string, [number, number]> = {};
    for (const name of Object.keys(zip.files).sort()) {
      const photo = await zip.file(name)!.async('nodebuffer');
      const meta = await sharp(photo).metadata();
      expect(meta.format).toBe('jpeg');
      expect(meta.exif).toBeUndefined();
      expect(meta.orientation).toBeUndefined();
      expect(photo.includes(Buffer.from('Exif\0', 'latin1'))).toBe(false);
      // An independent reader finds no EXIF, GPS, XMP, IPTC or ICC either.
      expect(
        await exifr.parse(photo, { tiff: true, gps: true, xmp: true, iptc: true, icc: true }),
      ).toBeUndefined();
      sizes[name] = [meta.width, meta.height];
    }
    expect(sizes).toEqual({
      'photo-01.jpg': [640, 560],
      'photo-02.jpg': [700, 600],
      'photo-03.jpg': [800, 1200], // upright
      'photo-04.jpg': [768, 576], // decoded from HEIC
      'photo-05.jpg': [600, 800],
      'photo-06.jpg': [900, 600],
    });
    // Orientation 6 turns the image 90° clockwise: the red left half is now on top.
    const upright = await zip.file('photo-03.jpg')!.async('nodebuffer');
    expect((await rgbAt(upright, 400, 200))[0]).toBeGreaterThan(200);
    expect((await rgbAt(upright, 400, 1000))[2]).toBeGreaterThan(200);
  });

  it('reports a 300×300 photo, a text file named .jpg, a truncated JPEG and a duplicate, and writes nothing', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const first = await jpeg(640, 640, 11);
    const whole = await noisy(800, 800).jpeg().toBuffer();
    const files: UploadFile[] = [
      { name: 'ok-1.jpg', bytes: first },
      { name: 'small.jpg', bytes: await jpeg(300, 300, 12) },
      { name: 'notes.jpg', bytes: Buffer.from('these are not the photos you are looking for\n'.repeat(40)) },
      { name: 'cut.jpg', bytes: whole.subarray(0, Math.floor(whole.length / 2)) },
      { name: 'again.jpg', bytes: Buffer.from(first) },
      { name: 'ok-2.jpg', bytes: await jpeg(700, 700, 13) },
    ];

    const res = await pack(imager.client, { accountId, datasetId, minImages: 5, maxImages: 30 }, files);

    expect(res.problems.map(({ index, file, code }) => ({ index, file, code }))).toEqual([
      { index: 1, file: 'small.jpg', code: 'too_small' },
      { index: 2, file: 'notes.jpg', code: 'unsupported_type' },
      { index: 3, file: 'cut.jpg', code: 'undecodable' },
      { index: 4, file: 'again.jpg', code: 'duplicate' },
    ]);
    for (const problem of res.problems) expect(problem.detail).not.toBe('');
    expect(res).toMatchObject({ datasetKey: '', datasetUrl: '', images: 0, zipBytes: 0 });
    expect(await bucket.head(`datasets/${accountId}/${datasetId}.zip`)).toBeNull();
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });

  it('refuses a decompression bomb and an oversized HEIC as too_large, and writes nothing', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const heic = Buffer.from(readFileSync(HEIC_FIXTURE));
    const ispe = heic.indexOf('ispe'); // the primary image's size property
    heic.writeUInt32BE(60_000, ispe + 8);
    heic.writeUInt32BE(40_000, ispe + 12);
    const files: UploadFile[] = [
      { name: 'ok.jpg', bytes: await jpeg(640, 640, 31) },
      { name: 'bomb.png', bytes: await pngBomb(50_000, 50_000) },
      { name: 'huge.heic', bytes: heic },
    ];
    const res = await pack(imager.client, { accountId, datasetId, minImages: 1, maxImages: 30 }, files);
    expect(res.problems.map(({ index, code, detail }) => ({ index, code, detail }))).toEqual([
      { index: 1, code: 'too_large', detail: '50000×50000 px; a photo may have at most 40 megapixels' },
      { index: 2, code: 'too_large', detail: '60000×40000 px; a photo may have at most 40 megapixels' },
    ]);
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });

  it('enforces the image count of the header', async () => {
    const accountId = randomUUID();
    const photos = await Promise.all(
      [1, 2, 3, 4].map(async (seed) => ({ name: `p${seed}.jpg`, bytes: await jpeg(600, 600, 20 + seed) })),
    );

    const few = await pack(
      imager.client,
      { accountId, datasetId: randomUUID(), minImages: 5, maxImages: 30 },
      photos.slice(0, 2),
    );
    expect(few.problems.map((p) => [p.index, p.code])).toEqual([[2, 'too_few_images']]);

    const many = await pack(
      imager.client,
      { accountId, datasetId: randomUUID(), minImages: 1, maxImages: 3 },
      photos,
    );
    expect(many.problems.map((p) => [p.index, p.file, p.code])).toEqual([[3, 'p4.jpg', 'too_many_images']]);

    const fine = await pack(
      imager.client,
      { accountId, datasetId: randomUUID(), minImages: 1, maxImages: 3 },
      photos.slice(0, 3),
    );
    expect(fine).toMatchObject({ problems: [], images: 3 });
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([fine.datasetKey]);
  });

  it('refuses a broken stream with INVALID_ARGUMENT and writes nothing', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const photo = await jpeg(600, 600, 30);

    // No header: the first message is a file.
    const noHeader = imager.client.packTrainingImages();
    await sendFile(noHeader, 0, { name: 'a.jpg', bytes: photo }).catch(() => undefined);
    const e1 = await failure(noHeader.end());
    expect([e1.grpcCode, e1.message]).toEqual([
      status.INVALID_ARGUMENT,
      'the first message of PackTrainingImages must be the header',
    ]);

    // A chunk before any file_start.
    const orphan = imager.client.packTrainingImages();
    await orphan.write({ header: { accountId, datasetId, minImages: 1, maxImages: 5 } });
    await orphan.write({ chunk: photo.subarray(0, 100) }).catch(() => undefined);
    const e2 = await failure(orphan.end());
    expect([e2.grpcCode, e2.message]).toEqual([
      status.INVALID_ARGUMENT,
      'a chunk arrived before any file_start',
    ]);

    // Files out of order.
    const skipped = imager.client.packTrainingImages();
    await skipped.write({ header: { accountId, datasetId, minImages: 1, maxImages: 5 } });
    await sendFile(skipped, 1, { name: 'a.jpg', bytes: photo }).catch(() => undefined);
    expect((await failure(skipped.end())).grpcCode).toBe(status.INVALID_ARGUMENT);

    // Ids that would not make a safe key.
    const bad = await failure(
      pack(imager.client, { accountId: '../../etc', datasetId }, [{ name: 'a.jpg', bytes: photo }]),
    );
    expect([bad.grpcCode, bad.code]).toEqual([status.INVALID_ARGUMENT, 'malformed_id']);

    const inverted = await failure(
      pack(imager.client, { accountId, datasetId, minImages: 9, maxImages: 3 }, []),
    );
    expect(inverted.grpcCode).toBe(status.INVALID_ARGUMENT);

    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });
});

describe('PackTrainingImages size limits', () => {
  let imager: TestImager;
  let bucket: TestBucket;

  beforeAll(async () => {
    imager = await startTestImager({
      PHOTO_MAX_FILE_BYTES: String(200 * 1024),
      PHOTO_MAX_TOTAL_BYTES: String(1024 * 1024),
    });
    bucket = testBucket();
  });

  afterAll(async () => {
    await imager?.stop();
    bucket?.close();
  });

  it('reports a file over the per-file limit as a problem with its real size, next to the other files', async () => {
    const accountId = randomUUID();
    const big = await noisy(700, 700).jpeg({ quality: 95 }).toBuffer();
    expect(big.length).toBeGreaterThan(200 * 1024);
    const text = Buffer.alloc(300 * 1024, 'x');
    const files: UploadFile[] = [
      { name: 'a.jpg', bytes: await jpeg(600, 600, 41) },
      { name: 'big.jpg', bytes: big },
      { name: 'big.txt', bytes: text },
      { name: 'b.jpg', bytes: await jpeg(600, 600, 42) },
    ];

    const res = await pack(
      imager.client,
      { accountId, datasetId: randomUUID(), minImages: 1, maxImages: 10 },
      files,
    );

    expect(res.problems.map((p) => [p.index, p.code])).toEqual([
      [1, 'file_too_large'],
      [2, 'unsupported_type'],
      [2, 'file_too_large'],
    ]);
    expect(res.problems[0]!.detail).toContain(`${(big.length / 1024).toFixed(1).replace(/\.0$/, '')} KiB`);
    expect(res.problems[0]!.detail).toContain('200 KiB');
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });

  it('reports the file that takes the upload past the total limit', async () => {
    const accountId = randomUUID();
    const files = await Promise.all(
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(async (seed) => ({
        name: `n${seed}.jpg`,
        bytes: await noisy(520, 520).jpeg({ quality: 80 }).toBuffer(),
      })),
    );
    let total = 0;
    const crossing = files.findIndex((f) => (total += f.bytes.length) > 1024 * 1024);
    expect(crossing).toBeGreaterThan(0);

    const res = await pack(
      imager.client,
      { accountId, datasetId: randomUUID(), minImages: 1, maxImages: 10 },
      files,
    );

    expect(res.problems.map((p) => [p.index, p.code])).toEqual([[crossing, 'total_too_large']]);
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });
});
