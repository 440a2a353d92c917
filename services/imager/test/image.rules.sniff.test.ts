import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sniffImageType } from '../src/domain';
import { blank } from './support/images';

const HEIC_FIXTURE = join(__dirname, 'fixtures', 'photo-768x576.heic');

/** An ISO-BMFF file head: an ftyp box with these brands, then the start of a meta box. */
function ftyp(major: string, ...compatible: string[]): Buffer {
  const size = 16 + 4 * compatible.length;
  const box = Buffer.alloc(size);
  box.writeUInt32BE(size, 0);
  box.write('ftyp', 4, 'latin1');
  box.write(major, 8, 'latin1');
  compatible.forEach((brand, i) => box.write(brand, 16 + 4 * i, 'latin1'));
  return Buffer.concat([box, Buffer.from('\0\0\0\x20metaavif heic', 'latin1')]);
}

describe('sniffImageType', () => {
  it.each([
    ['jpeg', () => blank(8, 8).jpeg().toBuffer()],
    ['png', () => blank(8, 8).png().toBuffer()],
    ['webp', () => blank(8, 8).webp().toBuffer()],
    ['avif', () => blank(8, 8).avif({ effort: 0 }).toBuffer()],
    ['heic', async () => readFileSync(HEIC_FIXTURE)],
  ] as const)('recognises a real %s file', async (type, make) => {
    expect(sniffImageType(await make())).toBe(type);
  });

  it.each([
    [['heic', 'mif1', 'heic'], 'heic'],
    [['heix'], 'heic'],
    [['hevc', 'msf1'], 'heic'],
    [['heim'], 'heic'],
    [['heis'], 'heic'],
    [['mif1', 'mif1', 'heic'], 'heic'],
    [['msf1', 'msf1'], 'heic'],
    [['mif1', 'mif1', 'miaf', 'MA1B', 'avif'], 'avif'],
    [['avif', 'mif1', 'miaf'], 'avif'],
    [['avis', 'msf1'], 'avif'],
    [['isom', 'isom', 'iso2', 'mp41'], null],
    [['qt  '], null],
  ] as const)('brands %j are %s', ([major, ...compatible], type) => {
    expect(sniffImageType(ftyp(major, ...compatible))).toBe(type);
  });

  it('reads compatible brands only inside the ftyp box', () => {
    // The "avif" and "heic" after the box belong to the next box, not to the brand list.
    expect(sniffImageType(ftyp('isom', 'mp41'))).toBeNull();
  });

  it('refuses text, other image formats and short or empty input', async () => {
    expect(sniffImageType(Buffer.from('hello, I am a text file named photo.jpg\n'))).toBeNull();
    expect(sniffImageType(await blank(8, 8).gif().toBuffer())).toBeNull();
    expect(sniffImageType(await blank(8, 8).tiff().toBuffer())).toBeNull();
    expect(sniffImageType(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull();
    expect(sniffImageType(Buffer.from('RIFF\0\0\0\0WAVE', 'latin1'))).toBeNull();
    expect(sniffImageType(Buffer.from([0xff, 0xd8]))).toBeNull();
    expect(sniffImageType(Buffer.alloc(0))).toBeNull();
  });
});
