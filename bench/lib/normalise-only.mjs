// The train benchmark's isolated stage: the imager's own checkPhotos (sniff, decode, auto-orient,
// re-encode as JPEG) on the cached photos, at the imager's default concurrency, in a process of its
// own, with no network, zip or bucket. Reports wall time and CPU to the parent.
import { cpuSeconds, now, require, round } from './common.mjs';
import { benchPhotos } from './photos.mjs';

const { checkPhotos, DEFAULT_CHECK_CONCURRENCY } = require('./services/imager/dist/domain/index.js');

const photos = (await benchPhotos()).map((p, index) => ({ index, file: p.name, bytes: p.data }));
const cpu0 = cpuSeconds(process.pid);
const t = now();
const result = await checkPhotos(photos, { concurrency: DEFAULT_CHECK_CONCURRENCY });
const ms = now() - t;
if (result.problems.length) throw new Error(`photos rejected: ${JSON.stringify(result.problems)}`);
process.send({
  ms: round(ms, 0),
  cpu_s: round(cpuSeconds(process.pid) - cpu0, 1),
  concurrency: DEFAULT_CHECK_CONCURRENCY,
  normalised_bytes: result.photos.reduce((a, p) => a + p.jpeg.length, 0),
});
process.disconnect();
