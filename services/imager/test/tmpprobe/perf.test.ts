import { readFileSync } from 'node:fs';
import { checkPhotos, createStoredZip, type IncomingPhoto } from '../../src/domain';
it('perf', async () => {
  const big = readFileSync('/tmp/exp/big.jpg');
  const heic = readFileSync('/tmp/exp/big.heic');
  let maxRss = 0, maxGap = 0, last = Date.now();
  const iv = setInterval(() => { const n = Date.now(); maxGap = Math.max(maxGap, n - last); last = n; maxRss = Math.max(maxRss, process.memoryUsage().rss); }, 5);
  async function* src(): AsyncGenerator<IncomingPhoto> {
    for (let i = 0; i < 30; i++) {
      const base = i % 6 === 0 ? heic : big;
      // make each unique: append a byte after EOI / end of file
      yield { index: i, file: `${i}`, bytes: Buffer.concat([base, Buffer.from([i])]) };
    }
  }
  const t = Date.now();
  const r = await checkPhotos(src());
  const tCheck = Date.now() - t;
  const zip = createStoredZip();
  let size = 0; zip.stream.on('data', (c: Buffer) => { size += c.length; });
  for (const p of r.photos) await zip.addFile(`${p.index}.jpg`, p.jpeg);
  await zip.finish();
  clearInterval(iv);
  console.log({ problems: r.problems, photos: r.photos.length, tCheck, tTotal: Date.now() - t, maxRssMB: maxRss >> 20, maxGap, zipMB: size >> 20 });
}, 300000);
