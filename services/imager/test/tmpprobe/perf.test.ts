import { readFileSync } from 'node:fs';
import { checkPhotos, inspectPhoto, type IncomingPhoto } from '../../src/domain';
import { decodeHeic } from '../../src/domain/heic.decode';
async function gapDuring(label: string, fn: () => Promise<unknown>) {
  let maxGap = 0, last = Date.now(), maxRss = 0;
  const iv = setInterval(() => { const n = Date.now(); maxGap = Math.max(maxGap, n - last); last = n; maxRss = Math.max(maxRss, process.memoryUsage().rss); }, 5);
  const t = Date.now();
  const r = await fn();
  const n = Date.now(); maxGap = Math.max(maxGap, n - last);
  clearInterval(iv);
  console.log(label, 'ms', n - t, 'maxGap', maxGap, 'maxRssMB', maxRss >> 20, (r as any)?.problems?.length);
}
it('perf', async () => {
  const big = readFileSync('/tmp/exp/big.jpg');
  const heic = readFileSync('/tmp/exp/big.heic');
  await gapDuring('jpeg inspect', () => inspectPhoto({ index: 0, file: 'a', bytes: big }));
  await gapDuring('heic decode 1', () => decodeHeic(heic));
  await gapDuring('heic decode 2', () => decodeHeic(heic));
  await gapDuring('heic inspect', () => inspectPhoto({ index: 0, file: 'a', bytes: heic }));
  async function* src(): AsyncGenerator<IncomingPhoto> {
    for (let i = 0; i < 30; i++) yield { index: i, file: `${i}`, bytes: Buffer.concat([i % 6 === 0 ? heic : big, Buffer.from([i])]) };
  }
  await gapDuring('batch 30 (5 heic)', () => checkPhotos(src()));
  async function* allHeic(): AsyncGenerator<IncomingPhoto> {
    for (let i = 0; i < 8; i++) yield { index: i, file: `${i}`, bytes: Buffer.concat([heic, Buffer.from([i])]) };
  }
  await gapDuring('batch 8 heic', () => checkPhotos(allHeic()));
}, 300000);
