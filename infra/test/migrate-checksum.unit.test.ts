import fs from 'node:fs';
import path from 'node:path';

import { flywayChecksum } from '../migrate/checksum';
import { repoRoot } from '../stack/repo-root';

// Files whose checksums Flyway's own ChecksumCalculator computed (see the README beside them).
const fixtures = path.resolve(repoRoot(__dirname), '..', 'shared', 'fixtures', 'flyway-checksums');
const expected = fs
  .readFileSync(path.join(fixtures, 'expected.tsv'), 'utf8')
  .split('\n')
  .filter((line) => line.trim())
  .map((line) => {
    const [script, checksum] = line.split('\t');
    return [script!, Number(checksum)] as const;
  });

describe('flywayChecksum', () => {
  it('has an expected checksum for every fixture file', () => {
    const files = fs.readdirSync(fixtures).filter((f) => f.endsWith('.sql'));
    expect(files.sort()).toEqual(expected.map(([script]) => script).sort());
  });

  it.each(expected)('%s → %i, as Flyway computed', (script, checksum) => {
    expect(flywayChecksum(fs.readFileSync(path.join(fixtures, script)))).toBe(checksum);
  });

  it('ignores line endings and a leading BOM but not content', () => {
    const lf = flywayChecksum(Buffer.from('SELECT 1;\nSELECT 2;\n'));
    expect(flywayChecksum(Buffer.from('\uFEFFSELECT 1;\r\nSELECT 2;'))).toBe(lf);
    expect(flywayChecksum(Buffer.from('SELECT 1;\nSELECT 3;\n'))).not.toBe(lf);
  });

  it('returns 0 for an empty file', () => {
    expect(flywayChecksum(Buffer.alloc(0))).toBe(0);
  });

  it.each([
    ['a lone continuation byte', [0x53, 0x80, 0x0a]],
    ['a truncated sequence', [0x27, 0xc3, 0x27]],
    ['an overlong encoding', [0xc0, 0xaf]],
    ['Latin-1 text', [...Buffer.from('caf'), 0xe9]],
  ])('rejects invalid UTF-8: %s', (_, bytes) => {
    expect(() => flywayChecksum(Buffer.from(bytes))).toThrow(/UTF-8/);
  });
});
