import * as zlib from 'node:zlib';

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
