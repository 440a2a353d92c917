// The train benchmark's photos: 20 JPEGs of 4000×3000, 3–4 MB each, generated once with sharp
// (a tinted gradient under Gaussian noise, different in every photo) and cached in
// bench/.cache/photos. A manifest records the parameters; changing them regenerates.
import fs from 'node:fs';
import path from 'node:path';
import { CACHE_DIR, log, require } from './common.mjs';

const sharp = require('sharp');

const PHOTO_SPEC = { count: 20, width: 4000, height: 3000, sigma: 15, quality: 85, version: 2 };
const DIR = path.join(CACHE_DIR, 'photos');
const MANIFEST = path.join(DIR, 'manifest.json');

async function makePhoto(i) {
  const { width, height, sigma, quality } = PHOTO_SPEC;
  const hue = (i * 137) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${hue},45%,60%)"/>
<stop offset="1" stop-color="hsl(${(hue + 60) % 360},50%,30%)"/></linearGradient></defs>
<rect width="${width}" height="${height}" fill="url(#g)"/><circle cx="${width / 2}" cy="${height / 2}" r="${height / 3}" fill="hsl(${(hue + 180) % 360},40%,50%)"/></svg>`;
  const base = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer();
  const noise = await sharp({
    create: {
      width,
      height,
      channels: 3,
      background: { r: 0, g: 0, b: 0 },
      noise: { type: 'gaussian', mean: 128, sigma },
    },
  })
    .raw()
    .toBuffer();
  // base + (noise - 128): a photo-like picture with sensor-like grain that JPEG cannot compress away.
  for (let p = 0; p < base.length; p++) base[p] = Math.max(0, Math.min(255, base[p] + noise[p] - 128));
  return sharp(base, { raw: { width, height, channels: 3 } })
    .jpeg({ quality, mozjpeg: false })
    .withExifMerge({ IFD0: { Make: 'Atelier bench', Model: `photo ${i + 1}` } })
    .toBuffer();
}

/** [{name, data}] — generated on first use, then read from the cache. */
export async function benchPhotos() {
  const files = Array.from({ length: PHOTO_SPEC.count }, (_, i) =>
    path.join(DIR, `photo-${String(i + 1).padStart(2, '0')}.jpg`),
  );
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(MANIFEST, 'utf8'));
  } catch {
    manifest = undefined;
  }
  const fresh =
    JSON.stringify(manifest) === JSON.stringify(PHOTO_SPEC) && files.every((f) => fs.existsSync(f));
  if (!fresh) {
    log(
      `train: generating ${PHOTO_SPEC.count} photos of ${PHOTO_SPEC.width}×${PHOTO_SPEC.height} into ${path.relative(process.cwd(), DIR)} (once)`,
    );
    fs.rmSync(DIR, { recursive: true, force: true });
    fs.mkdirSync(DIR, { recursive: true });
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const i = next++;
        fs.writeFileSync(files[i], await makePhoto(i));
      }
    };
    await Promise.all([worker(), worker()]);
    fs.writeFileSync(MANIFEST, JSON.stringify(PHOTO_SPEC));
  }
  return files.map((f) => ({ name: path.basename(f), data: fs.readFileSync(f) }));
}
