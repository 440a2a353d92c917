import type { Readable } from 'node:stream';
import JSZip from 'jszip';
import { crc32, crc32Table, createStoredZip, dosDateTime, ZIP_MAX_ENTRIES } from '../src/clients/zip.client';
import { checkPhotos, type IncomingPhoto } from '../src/domain';
import { jpeg } from './support/images';
import { inspect } from './support/photos';

function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

interface CentralRecord {
  name: string;
  flags: number;
  method: number;
  size: number;
  offset: number;
}

/** Reads the archive's own structure, independently of any zip library. */
function readDirectory(zip: Buffer): { count: number; entries: CentralRecord[] } {
  const end = zip.length - 22;
  expect(zip.readUInt32LE(end)).toBe(0x06054b50);
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries: CentralRecord[] = [];
  for (let i = 0; i < count; i += 1) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`no central header at ${at}`);
    const nameLength = zip.readUInt16LE(at + 28);
    entries.push({
      name: zip.toString('utf8', at + 46, at + 46 + nameLength),
      flags: zip.readUInt16LE(at + 8),
      method: zip.readUInt16LE(at + 10),
      size: zip.readUInt32LE(at + 24),
      offset: zip.readUInt32LE(at + 42),
    });
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  expect(at).toBe(end);
  return { count, entries };
}

/** Resolves with whether `promise` settled while the event loop went round a few times. */
async function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('createStoredZip', () => {
  it('packs a checked 6-photo upload that jszip opens, every entry STORED', async () => {
    const upload: IncomingPhoto[] = await Promise.all(
      Array.from({ length: 6 }, async (_, index) => ({
        index,
        file: `in${index}.png`,
        bytes: await jpeg(600, 520, index + 1),
      })),
    );
    const { problems, photos } = await checkPhotos(upload, { inspect });
    expect(problems).toEqual([]);

    const zip = createStoredZip();
    const bytes = collect(zip.stream);
    const mtime = new Date(Date.UTC(2024, 4, 17, 13, 45, 30));
    for (const photo of photos)
      await zip.addFile(`photo-${String(photo.index + 1).padStart(2, '0')}.jpg`, photo.jpeg, mtime);
    await zip.finish();
    const archive = await bytes;

    const { count, entries } = readDirectory(archive);
    expect(count).toBe(6);
    for (const entry of entries) {
      expect(entry.method).toBe(0);
      expect(archive.readUInt32LE(entry.offset)).toBe(0x04034b50);
      expect(archive.readUInt16LE(entry.offset + 8)).toBe(0); // method in the local header
      expect(archive.readUInt32LE(entry.offset + 18)).toBe(entry.size); // stored: compressed = size
    }

    const opened = await JSZip.loadAsync(archive, { checkCRC32: true });
    const names = Object.keys(opened.files).sort();
    expect(names).toEqual([
      'photo-01.jpg',
      'photo-02.jpg',
      'photo-03.jpg',
      'photo-04.jpg',
      'photo-05.jpg',
      'photo-06.jpg',
    ]);
    for (const [i, photo] of photos.entries()) {
      const file = opened.file(names[i]!)!;
      const content = await file.async('nodebuffer');
      expect(content.equals(photo.jpeg)).toBe(true);
      expect(content.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
      expect(file.date.toISOString()).toBe('2024-05-17T13:45:30.000Z');
    }
  });

  it('marks names as UTF-8', async () => {
    const zip = createStoredZip();
    const bytes = collect(zip.stream);
    await zip.addFile('Ünïcødé/фото.jpg', Buffer.from('x'));
    await zip.finish();
    const archive = await bytes;
    const [entry] = readDirectory(archive).entries;
    expect(entry!.flags & 0x0800).toBe(0x0800);
    expect(archive.readUInt16LE(6) & 0x0800).toBe(0x0800);
    const opened = await JSZip.loadAsync(archive);
    expect(await opened.file('Ünïcødé/фото.jpg')!.async('string')).toBe('x');
  });

  it('writes a valid empty archive', async () => {
    const zip = createStoredZip();
    const bytes = collect(zip.stream);
    await zip.finish();
    const archive = await bytes;
    expect(archive).toHaveLength(22);
    expect(Object.keys((await JSZip.loadAsync(archive)).files)).toEqual([]);
  });

  it('keeps entries in call order when calls are not awaited one by one', async () => {
    const zip = createStoredZip({ highWaterMark: 16 });
    const bytes = collect(zip.stream);
    await Promise.all(['a', 'b', 'c', 'd'].map((name) => zip.addFile(name, Buffer.alloc(100, name))));
    await zip.finish();
    const archive = await bytes;
    expect(readDirectory(archive).entries.map((entry) => entry.name)).toEqual(['a', 'b', 'c', 'd']);
    const opened = await JSZip.loadAsync(archive, { checkCRC32: true });
    expect(await opened.file('c')!.async('string')).toBe('c'.repeat(100));
  });

  it('waits for a slow consumer before accepting more', async () => {
    const zip = createStoredZip({ highWaterMark: 1024 });
    const adding = zip.addFile('big.bin', Buffer.alloc(64 * 1024, 1));
    expect(await settlesSoon(adding)).toBe(false); // nobody reads yet

    const bytes = collect(zip.stream);
    await adding;
    await zip.finish();
    const opened = await JSZip.loadAsync(await bytes, { checkCRC32: true });
    expect((await opened.file('big.bin')!.async('nodebuffer')).length).toBe(64 * 1024);
  });

  it('rejects pending and later calls once the consumer destroys the stream', async () => {
    const zip = createStoredZip({ highWaterMark: 1024 });
    const adding = expect(zip.addFile('big.bin', Buffer.alloc(64 * 1024))).rejects.toThrow('upload aborted');
    const seen = new Promise((resolve) => zip.stream.once('error', resolve));
    zip.stream.destroy(new Error('upload aborted'));
    expect(await seen).toEqual(new Error('upload aborted'));
    await adding;
    await expect(zip.addFile('next.bin', Buffer.alloc(1))).rejects.toThrow('upload aborted');
  });

  it('refuses unsafe or repeated names and use after finish', async () => {
    const zip = createStoredZip();
    void collect(zip.stream);
    for (const name of ['', '/etc/passwd', '../up.jpg', 'a/../../b', 'a\\b.jpg', 'dir/', 'a//b']) {
      await expect(zip.addFile(name, Buffer.alloc(1))).rejects.toThrow(RangeError);
    }
    await zip.addFile('ok.jpg', Buffer.alloc(1));
    await expect(zip.addFile('ok.jpg', Buffer.alloc(1))).rejects.toThrow(/already has an entry/);
    await zip.finish();
    await expect(zip.addFile('late.jpg', Buffer.alloc(1))).rejects.toThrow(/already finished/);
    await expect(zip.finish()).rejects.toThrow(/already finished/);
  });

  it(`refuses entry ${ZIP_MAX_ENTRIES + 1}, which would need ZIP64`, async () => {
    const zip = createStoredZip();
    const bytes = collect(zip.stream);
    const empty = Buffer.alloc(0);
    await Promise.all(Array.from({ length: ZIP_MAX_ENTRIES }, (_, i) => zip.addFile(`${i}`, empty)));
    await expect(zip.addFile('one-too-many', empty)).rejects.toThrow(RangeError);
    await zip.finish();
    const archive = await bytes;
    expect(readDirectory(archive).count).toBe(ZIP_MAX_ENTRIES);
  });

  it('computes the ZIP CRC-32 natively and with the fallback table alike', () => {
    const check = Buffer.from('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Table(check)).toBe(0xcbf43926);
    const random = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251));
    expect(crc32Table(random)).toBe(crc32(random));
    expect(crc32Table(Buffer.alloc(0))).toBe(0);
  });

  it('encodes DOS dates in UTC and clamps those DOS cannot hold', () => {
    const { time, date } = dosDateTime(new Date(Date.UTC(2024, 4, 17, 13, 45, 31)));
    expect([date >> 9, (date >> 5) & 0xf, date & 0x1f]).toEqual([44, 5, 17]);
    expect([time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2]).toEqual([13, 45, 30]);
    expect(dosDateTime(new Date(0))).toEqual({ time: 0, date: (1 << 5) | 1 });
    expect(() => dosDateTime(new Date(Number.NaN))).toThrow(RangeError);
  });
});
