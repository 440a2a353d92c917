import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeHeic } from '../src/clients/heic.client';

const limits = { maxPixels: 40_000_000 };

const fixture = readFileSync(join(__dirname, 'fixtures', 'photo-768x576.heic'));

function rgbaAt(decoded: { width: number; rgba: Buffer }, x: number, y: number): number[] {
  const at = (y * decoded.width + x) * 4;
  return [...decoded.rgba.subarray(at, at + 4)];
}

describe('decodeHeic', () => {
  it('decodes HEVC-coded HEIC to RGBA', async () => {
    const decoded = await decodeHeic(fixture, limits);
    expect([decoded.width, decoded.height, decoded.rgba.length]).toEqual([768, 576, 768 * 576 * 4]);
    const [r, g, b, a] = rgbaAt(decoded, 250, 260); // inside the red disc
    expect(r).toBeGreaterThan(150);
    expect(g).toBeLessThan(100);
    expect(b).toBeLessThan(100);
    expect(a).toBe(255);
  });

  it('runs concurrent decodes side by side', async () => {
    const results = await Promise.all([
      decodeHeic(fixture, limits),
      decodeHeic(fixture, limits),
      decodeHeic(fixture, limits),
    ]);
    expect(results.map((decoded) => decoded.width)).toEqual([768, 768, 768]);
    expect(results[1].rgba.equals(results[0].rgba)).toBe(true);
  });

  it("rejects a broken file with libheif's reason and keeps working afterwards", async () => {
    const broken = fixture.subarray(0, fixture.length - 2000);
    await expect(decodeHeic(broken, limits)).rejects.toThrow(/data outside of file bounds|end of file/i);
    expect((await decodeHeic(fixture, limits)).height).toBe(576);
  });
});
