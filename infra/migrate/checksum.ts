import zlib from 'node:zlib';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** The checksum Flyway records for a SQL migration: CRC32 over the UTF-8 bytes of every line,
 * without line terminators (\n, \r or \r\n) and without a leading BOM, as a signed 32-bit int.
 * Line endings and a BOM therefore never change the checksum; blank lines add nothing. */
export function flywayChecksum(content: Buffer): number {
  let text: string;
  try {
    text = utf8.decode(content);
  } catch {
    throw new Error('migration is not valid UTF-8');
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  let crc = 0;
  for (const line of text.split(/\r\n|\r|\n/)) {
    // Empty lines add no bytes. They must be skipped, not fed in: zlib.crc32 given an empty array
    // without a backing store (TextEncoder's) returns 0 instead of the running value.
    if (line) crc = zlib.crc32(encoder.encode(line), crc);
  }
  return crc | 0;
}
