// The train benchmark's isolated stage: the imager's own checkPhotos (sniff, decode, auto-orient,
// scale to the long side, re-encode as JPEG — or strip an upright sRGB JPEG's metadata) on the cached photos, at the imager's default concurrency, in a process of its
// own, with no network, zip or bucket. Reports wall time and CPU to the parent.
import { cpuSeconds, now, require, round } from './common.mjs';
import { benchPhotos } from './photos.mjs';

const {
  checkPhotos,
  DecodeBudget,
  DEFAULT_CHECK_CONCURRENCY,
  DEFAULT_PHOTO_LIMITS,
  inspectPhoto,
} = require('./services/imager/dist/domain/index.js');
const { SharpPhotoCodec } = require('./services/imager/dist/clients/image.client.js');
// The service's defaults: long side 2048, 40 MP ceiling, 512 MiB decode budget.
const deps = { codec: new SharpPhotoCodec(), budget: new DecodeBudget(512 * 1024 * 1024) };
const limits = { ...DEFAULT_PHOTO_LIMITS, minCount: 1 };

const photos = (await benchPhotos()).map((p, index) => ({ index, file: p.name, bytes: p.data }));
const cpu0 = cpuSeconds(process.pid);
const t = now();
const result = await checkPhotos(photos, {
  limits,
  concurrency: DEFAULT_CHECK_CONCURRENCY,
  inspect: (photo, l) => inspectPhoto(photo, l, deps),
});
const ms = now() - t;
if (result.problems.length) throw new Error(`photos rejected: ${JSON.stringify(result.problems)}`);
process.send({
  ms: round(ms, 0),
  cpu_s: round(cpuSeconds(process.pid) - cpu0, 1),
  concurrency: DEFAULT_CHECK_CONCURRENCY,
  normalised_bytes: result.photos.reduce((a, p) => a + p.jpeg.length, 0),
});
process.disconnect();
