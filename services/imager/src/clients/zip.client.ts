import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';

/**
 * A ZIP archive written as a stream, every entry STORED (method 0): the photos are JPEGs already,
 * so deflating them would spend CPU to save nothing. Each file's bytes are in memory when it is
 * added, so its CRC and sizes go in the local header and no data descriptor is needed.
 *
 * `addFile` resolves once the consumer has taken enough of the stream to make room, so a slow
 * upload holds back the producer. Calls are written in the order they are made. The data buffer
 * is pushed without copying: do not modify it afterwards. To abandon the archive, destroy
 * `stream`; pending and later calls then reject.
 */
export interface StoredZip {
  readonly stream: Readable;
  addFile(name: string, data: Buffer, mtime?: Date): Promise<void>;
  /** Writes the central directory and ends the stream. */
  finish(): Promise<void>;
}

// Without ZIP64 the counts are 16-bit and sizes and offsets 32-bit; the all-ones values mean
// "look in the ZIP64 record", so they are excluded too.
export const ZIP_MAX_ENTRIES = 0xfffe;
const ZIP_MAX_BYTES = 0xfffffffe;

const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const END_RECORD_SIZE = 22;
const FLAG_UTF8_NAME = 1 << 11;
const METHOD_STORED = 0;
const VERSION_NEEDED = 10; // 1.0: stored entries only
const VERSION_MADE_BY = (3 << 8) | 20; // host Unix, so the external attributes carry a file mode
const EXTERNAL_ATTRIBUTES = (0o100644 << 16) >>> 0; // regular file, rw-r--r--

interface Entry {
  readonly name: Buffer;
  readonly crc: number;
  readonly size: number;
  readonly time: number;
  readonly date: number;
  readonly offset: number;
}

export function createStoredZip(options: { highWaterMark?: number } = {}): StoredZip {
  const entries: Entry[] = [];
  const names = new Set<string>();
  let written = 0;
  // Bytes promised by accepted addFile calls, some of which may still be queued.
  let entryBytes = 0;
  let centralBytes = 0;
  let open = true;
  let destroyed: Error | undefined;
  let waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
  let queue: Promise<void> = Promise.resolve();

  const stream = new Readable({
    highWaterMark: options.highWaterMark,
    read() {
      const waiter = waiting;
      waiting = undefined;
      waiter?.resolve();
    },
    destroy(error, callback) {
      destroyed = error ?? new Error('the zip stream was destroyed');
      const waiter = waiting;
      waiting = undefined;
      waiter?.reject(destroyed);
      callback(error);
    },
  });

  async function write(chunk: Buffer): Promise<void> {
    if (destroyed) throw destroyed;
    written += chunk.length;
    if (stream.push(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      waiting = { resolve, reject };
    });
  }

  /** Entries must not interleave, whether or not callers await each call. */
  function inOrder(job: () => Promise<void>): Promise<void> {
    const run = queue.then(job);
    queue = run.catch(() => undefined);
    return run;
  }

  function addFile(name: string, data: Buffer, mtime: Date = new Date()): Promise<void> {
    try {
      if (!open) throw new Error('the zip is already finished');
      const encodedName = checkName(name, names);
      const { time, date } = dosDateTime(mtime);
      if (names.size >= ZIP_MAX_ENTRIES) {
        throw new RangeError(`a zip without ZIP64 holds at most ${ZIP_MAX_ENTRIES} entries`);
      }
      // Counting this entry's central record and the end record too means finish() can never be
      // the call that overflows.
      const local = LOCAL_HEADER_SIZE + encodedName.length + data.length;
      const central = CENTRAL_HEADER_SIZE + encodedName.length;
      if (entryBytes + local + centralBytes + central + END_RECORD_SIZE > ZIP_MAX_BYTES) {
        throw new RangeError(`a zip without ZIP64 is at most ${ZIP_MAX_BYTES} bytes`);
      }
      names.add(name);
      entryBytes += local;
      centralBytes += central;
      return inOrder(async () => {
        const entry: Entry = {
          name: encodedName,
          crc: crc32(data),
          size: data.length,
          time,
          date,
          offset: written,
        };
        entries.push(entry);
        await write(localHeader(entry));
        await write(data);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function finish(): Promise<void> {
    if (!open) return Promise.reject(new Error('the zip is already finished'));
    open = false;
    return inOrder(async () => {
      const offset = written;
      const directory = Buffer.concat(entries.map(centralHeader));
      await write(Buffer.concat([directory, endRecord(entries.length, directory.length, offset)]));
      stream.push(null);
    });
  }

  return { stream, addFile, finish };
}

function checkName(name: string, taken: ReadonlySet<string>): Buffer {
  // Names are ours (photo-01.jpg…), but an archive others unpack must not climb out of its folder.
  const segments = name.split('/');
  if (
    name.length === 0 ||
    name.includes('\\') ||
    name.includes('\0') ||
    name.startsWith('/') ||
    segments.some((segment) => segment === '' || segment === '.' || segment === '..')
  ) {
    throw new RangeError(`not a safe relative file name for a zip entry: ${JSON.stringify(name)}`);
  }
  if (taken.has(name)) throw new RangeError(`the zip already has an entry named ${JSON.stringify(name)}`);
  const encoded = Buffer.from(name, 'utf8');
  if (encoded.length > 0xffff) throw new RangeError('a zip entry name is at most 65535 bytes');
  return encoded;
}

/** MS-DOS date and time, in UTC (ZIP has no time zone; UTC keeps archives reproducible). DOS
 * dates span 1980–2107 with 2-second steps; dates outside are clamped. */
export function dosDateTime(value: Date): { time: number; date: number } {
  if (Number.isNaN(value.getTime())) throw new RangeError('mtime is not a valid date');
  const year = value.getUTCFullYear();
  if (year < 1980) return { time: 0, date: (1 << 5) | 1 };
  if (year > 2107) return { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31 };
  return {
    time: (value.getUTCHours() << 11) | (value.getUTCMinutes() << 5) | (value.getUTCSeconds() >> 1),
    date: ((year - 1980) << 9) | ((value.getUTCMonth() + 1) << 5) | value.getUTCDate(),
  };
}

function localHeader(entry: Entry): Buffer {
  const header = Buffer.alloc(LOCAL_HEADER_SIZE + entry.name.length);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(VERSION_NEEDED, 4);
  header.writeUInt16LE(FLAG_UTF8_NAME, 6);
  header.writeUInt16LE(METHOD_STORED, 8);
  header.writeUInt16LE(entry.time, 10);
  header.writeUInt16LE(entry.date, 12);
  header.writeUInt32LE(entry.crc, 14);
  header.writeUInt32LE(entry.size, 18); // compressed size: stored, so the same
  header.writeUInt32LE(entry.size, 22);
  header.writeUInt16LE(entry.name.length, 26);
  header.writeUInt16LE(0, 28); // extra field length
  entry.name.copy(header, LOCAL_HEADER_SIZE);
  return header;
}

function centralHeader(entry: Entry): Buffer {
  const header = Buffer.alloc(CENTRAL_HEADER_SIZE + entry.name.length);
  header.writeUInt32LE(0x02014b50, 0);
  header.writeUInt16LE(VERSION_MADE_BY, 4);
  header.writeUInt16LE(VERSION_NEEDED, 6);
  header.writeUInt16LE(FLAG_UTF8_NAME, 8);
  header.writeUInt16LE(METHOD_STORED, 10);
  header.writeUInt16LE(entry.time, 12);
  header.writeUInt16LE(entry.date, 14);
  header.writeUInt32LE(entry.crc, 16);
  header.writeUInt32LE(entry.size, 20);
  header.writeUInt32LE(entry.size, 24);
  header.writeUInt16LE(entry.name.length, 28);
  // 30 extra field length, 32 comment length, 34 disk number, 36 internal attributes: all 0
  header.writeUInt32LE(EXTERNAL_ATTRIBUTES, 38);
  header.writeUInt32LE(entry.offset, 42);
  entry.name.copy(header, CENTRAL_HEADER_SIZE);
  return header;
}

function endRecord(count: number, directorySize: number, directoryOffset: number): Buffer {
  const record = Buffer.alloc(END_RECORD_SIZE);
  record.writeUInt32LE(0x06054b50, 0);
  // 4 this disk's number, 6 the directory's disk: both 0
  record.writeUInt16LE(count, 8);
  record.writeUInt16LE(count, 10);
  record.writeUInt32LE(directorySize, 12);
  record.writeUInt32LE(directoryOffset, 16);
  // 20 comment length: 0
  return record;
}

/** CRC-32 as ZIP (and zlib) define it. zlib.crc32 is native from Node 20.15; the package allows
 * Node 20.11, so older runtimes get the table version. */
export const crc32: (data: Uint8Array) => number =
  typeof zlib.crc32 === 'function' ? (data) => zlib.crc32(data) : crc32Table;

let table: Uint32Array | undefined;

export function crc32Table(data: Uint8Array): number {
  table ??= buildTable();
  let crc = 0xffffffff;
  for (const byte of data) crc = table[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function buildTable(): Uint32Array {
  const result = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    result[n] = c >>> 0;
  }
  return result;
}
