// train: 20 photos of 4000×3000 (3–4 MB each) through POST /api/v1/versions/train/{payment_id},
// gateway → imager (check, normalise, zip, bucket) → trainer → Replicate sandbox, time to 202 with
// what each stage took, and the peak RSS of the gateway and the imager (separate processes).
// Baseline, same run: one PutObject of the same number of bytes to the same bucket.
import { randomBytes } from 'node:crypto';
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  BENCH_DIR,
  CACHE_DIR,
  cpuDelta,
  cpuSnapshot,
  lastLog,
  log,
  median,
  mib,
  now,
  peakRss,
  require,
  resetPeakRss,
  round,
  rss,
  sleep,
  waitFor,
} from './lib/common.mjs';
import { benchPhotos } from './lib/photos.mjs';
import { newestProfile, printProfile, summariseProfile } from './lib/profile.mjs';
import { createAccount, paidPayment, startStack } from './lib/stack.mjs';

const { S3Client, PutObjectCommand, DeleteObjectCommand } = require('@aws-sdk/client-s3');

const TRIALS = Number(process.env.BENCH_TRAIN_TRIALS ?? 3);
export const target = {
  time_ratio_max: 2,
  imager_rss_growth_max_mib: 150,
  concurrent_imager_peak_max_mib: 1024,
  zip_at_most_upload: true,
};
const CONCURRENT = Number(process.env.BENCH_TRAIN_CONCURRENT ?? 4);
const HEIC_FIXTURE = path.join(
  BENCH_DIR,
  '..',
  'services',
  'imager',
  'test',
  'fixtures',
  'photo-768x576.heic',
);

/** The multipart body as a list of buffers, streamed with backpressure like a client would. */
function multipart(photos, fields) {
  const boundary = `----atelier-bench-${randomBytes(8).toString('hex')}`;
  const parts = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
    );
  }
  for (const p of photos) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="images"; filename="${p.name}"\r\ncontent-type: image/jpeg\r\n\r\n`,
      ),
    );
    // In 1 MiB slices, as a socket would take them.
    for (let at = 0; at < p.data.length; at += 1 << 20) parts.push(p.data.subarray(at, at + (1 << 20)));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { boundary, parts, length: parts.reduce((a, b) => a + b.length, 0) };
}

function upload(url, key, body) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const req = http.request(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': `multipart/form-data; boundary=${body.boundary}`,
        'content-length': body.length,
      },
    });
    let sent;
    req.on('finish', () => (sent = now() - t0));
    req.on('error', reject);
    req.on('response', (res) => {
      const headers = now() - t0;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          body: Buffer.concat(chunks).toString(),
          sentMs: sent,
          responseMs: headers,
          totalMs: now() - t0,
        }),
      );
    });
    (async () => {
      for (const part of body.parts) if (!req.write(part)) await new Promise((r) => req.once('drain', r));
      req.end();
    })().catch(reject);
  });
}

export async function run() {
  const photos = await benchPhotos();
  const totalBytes = photos.reduce((a, p) => a + p.data.length, 0);
  const stack = await startStack({
    name: 'train',
    replicate: { trainingMs: 600_000 },
    env: { RATE_LIMIT_PER_WINDOW: '100000', LOG_LEVEL: 'info' },
  });
  const db = await stack.db();
  const s3 = new S3Client({
    endpoint: stack.info.env.S3_ENDPOINT,
    region: stack.info.env.S3_REGION,
    credentials: {
      accessKeyId: stack.info.env.S3_ACCESS_KEY_ID,
      secretAccessKey: stack.info.env.S3_SECRET_ACCESS_KEY,
    },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    // A paid account per upload: an account's tier caps its trainings running at once, and the
    // sandbox's trainings never finish during the run.
    const freshKey = async () => (await createAccount(stack)).apiKey;
    const pids = await stack.pids();
    const logs = stack.info.logDir;
    const body = multipart(photos, { class: 'man', trigger_word: 'TOK' });
    const procs = {
      gateway: pids.gateway,
      imager: pids.imager,
      trainer: pids.trainer,
      billing: pids.billing,
      'stack (s3rver, sandboxes)': stack.info.stackPid,
    };

    // Baseline: the same number of bytes in one PutObject to the same bucket (median of 3, one untimed first).
    const blob = randomBytes(totalBytes);
    const put = async (i) => {
      const key = `bench/baseline-${i}.bin`;
      const t = now();
      await s3.send(
        new PutObjectCommand({
          Bucket: stack.info.env.S3_BUCKET,
          Key: key,
          Body: blob,
          ContentType: 'application/octet-stream',
        }),
      );
      const ms = now() - t;
      await s3.send(new DeleteObjectCommand({ Bucket: stack.info.env.S3_BUCKET, Key: key }));
      return ms;
    };
    await put('warm');
    const baselineMs = [];

    // The services' RSS before anything was uploaded: a peak is compared with this.
    const fresh = { gateway: rss(pids.gateway), imager: rss(pids.imager) };
    const trials = [];
    let first;
    for (let i = 0; i <= TRIALS; i++) {
      const warmup = i === 0;
      const apiKey = await freshKey();
      const paymentId = await paidPayment(stack, apiKey);
      await sleep(300);
      const idle = { gateway: rss(pids.gateway), imager: rss(pids.imager) };
      resetPeakRss(pids.gateway);
      resetPeakRss(pids.imager);
      const cpu0 = Object.fromEntries(Object.entries(procs).map(([n, p]) => [n, cpuSnapshot(p)]));
      const wall0 = Date.now();
      const res = await upload(`${stack.info.gatewayUrl}/api/v1/versions/train/${paymentId}`, apiKey, body);
      const cpu = Object.fromEntries(
        Object.entries(procs).map(([n, p]) => [n, round(cpuDelta(cpu0[n], cpuSnapshot(p)), 2)]),
      );
      const peak = { gateway: peakRss(pids.gateway), imager: peakRss(pids.imager) };
      if (res.status !== 202) throw new Error(`train answered ${res.status}: ${res.body.slice(0, 500)}`);
      const accepted = JSON.parse(res.body);
      if (accepted.images !== photos.length)
        throw new Error(`train accepted ${accepted.images} images, sent ${photos.length}`);

      // What the services logged about this request (pino lines: time of the end, duration_ms).
      await sleep(100);
      const gw = lastLog(
        path.join(logs, 'gateway.log'),
        (j) => j.msg === 'http' && /versions\/train/.test(j.route),
      );
      const pack = lastLog(
        path.join(logs, 'imager.log'),
        (j) => j.msg === 'rpc' && j.method === 'PackTrainingImages',
      );
      const stored = lastLog(path.join(logs, 'imager.log'), (j) => j.msg === 'dataset stored');
      // TrainVersion: the gateway streams the upload to trainer, which streams it on to imager's
      // PackTrainingImages and then starts the training.
      const trainVersion = lastLog(
        path.join(logs, 'trainer.log'),
        (j) => j.msg === 'rpc' && j.method === 'TrainVersion',
      );
      const rel = (at) => at - wall0; // ms since the client started sending (log times have ms resolution)
      const packStart = rel(pack.at - pack.duration_ms);
      const stages = {
        'gateway checks before the upload stream (billing GetPayment, ListPlans)': packStart,
        'upload streamed to imager while it checks, normalises, zips and stores (until the last byte is sent)':
          res.sentMs - packStart,
        'after the last byte: last photos normalised, zip finished, bucket upload completed':
          rel(stored.at) - res.sentMs,
        'dataset URL signed, PackTrainingImages answered': rel(pack.at) - rel(stored.at),
        'trainer after PackTrainingImages (claim payment, Replicate model + training create)':
          trainVersion.at - pack.at,
        'gateway response (rest)': res.responseMs - rel(trainVersion.at),
      };
      const trial = {
        ms: round(res.responseMs, 0),
        upload_sent_ms: round(res.sentMs, 0),
        gateway_logged_ms: gw?.duration_ms,
        pack_rpc_ms: pack.duration_ms,
        train_version_rpc_ms: trainVersion.duration_ms,
        zip_bytes: stored.zip_bytes,
        stages: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, round(v, 0)])),
        cpu_seconds: cpu,
        idle_rss_mib: { gateway: round(mib(idle.gateway), 0), imager: round(mib(idle.imager), 0) },
        peak_rss_mib: { gateway: round(mib(peak.gateway), 0), imager: round(mib(peak.imager), 0) },
      };
      log(
        `train: ${warmup ? 'warm-up' : `trial ${i}`}: 202 in ${trial.ms} ms (upload sent at ${trial.upload_sent_ms} ms), peak RSS gateway ${trial.peak_rss_mib.gateway} MiB, imager ${trial.peak_rss_mib.imager} MiB`,
      );
      if (warmup) first = trial;
      else trials.push(trial);

      // The sandbox downloads the zip right after the training is created: let it finish before the next trial.
      const { rows } = await db.query('SELECT replicate_training_id FROM trainer.versions WHERE id = $1', [
        accepted.version_id,
      ]);
      await waitFor(
        async () => (await stack.call('training', { id: rows[0].replicate_training_id }))?.dataset,
        { timeoutMs: 60_000, intervalMs: 200, what: 'the sandbox to download the dataset' },
      );
      if (!warmup) baselineMs.push(await put(i));
    }

    const concurrent = await concurrentUploads(stack, freshKey, body, pids, db, totalBytes);
    const hostile = await hostileUploads(stack, freshKey, pids);
    const normaliseOnly = await isolatedNormalise();
    const timeMet = median(trials.map((t) => t.ms)) / median(baselineMs) <= target.time_ratio_max;
    const PROFILE = process.env.BENCH_PROFILE;
    let profiles;
    if (PROFILE === '1' || (PROFILE !== '0' && !timeMet))
      profiles = await profileUpload(stack, freshKey, body);
    const ms = median(trials.map((t) => t.ms));
    const base = median(baselineMs);
    const uploadMib = round(mib(totalBytes), 1);
    const freshMib = { gateway: round(mib(fresh.gateway), 0), imager: round(mib(fresh.imager), 0) };
    // Peaks of every upload, the untimed first one included: it starts from a fresh process.
    const all = [first, ...trials];
    const peak = {
      gateway: Math.max(...all.map((t) => t.peak_rss_mib.gateway)),
      imager: Math.max(...all.map((t) => t.peak_rss_mib.imager)),
    };
    const growth = { gateway: peak.gateway - freshMib.gateway, imager: peak.imager - freshMib.imager };
    const ratio = round(ms / base, 2);
    const stageNames = Object.keys(trials[0].stages);
    const stages = Object.fromEntries(stageNames.map((k) => [k, median(trials.map((t) => t.stages[k]))]));
    const cpuMedian = Object.fromEntries(
      Object.keys(procs).map((n) => [n, median(trials.map((t) => t.cpu_seconds[n]))]),
    );
    const rssMet = growth.imager <= target.imager_rss_growth_max_mib;
    const zipBytes = trials[0].zip_bytes;
    const zipMet = zipBytes <= totalBytes;
    const concurrentMet = concurrent.imager_peak_rss_mib < target.concurrent_imager_peak_max_mib;
    return {
      figures: {
        time_to_202_ms: ms,
        trials_ms: trials.map((t) => t.ms),
        photos: photos.length,
        upload_bytes: totalBytes,
        zip_bytes: zipBytes,
        concurrent,
        hostile,
        rss_mib: {
          fresh: freshMib,
          first_upload_peak: first.peak_rss_mib,
          peak,
          growth_over_fresh: growth,
          idle_between_uploads: {
            gateway: median(trials.map((t) => t.idle_rss_mib.gateway)),
            imager: median(trials.map((t) => t.idle_rss_mib.imager)),
          },
        },
        stages_ms: stages,
        cpu_seconds_per_upload: cpuMedian,
        isolated_normalise: normaliseOnly,
      },
      baseline: {
        put_object_ms: round(base, 0),
        trials_ms: baselineMs.map((x) => round(x, 0)),
        bytes: totalBytes,
      },
      ratio: {
        time: ratio,
        imager_rss_growth_to_upload: round(growth.imager / uploadMib, 2),
        zip_to_upload: round(zipBytes / totalBytes, 2),
      },
      target,
      met: ratio <= target.time_ratio_max && rssMet && zipMet && concurrentMet,
      profiles,
      details: { first_upload: first, trials },
      table: [
        {
          figure: 'time to 202 ms',
          value: ms,
          baseline: round(base, 0),
          ratio,
          target: `≤ ${target.time_ratio_max}`,
          met: ratio <= target.time_ratio_max,
        },
        {
          figure: 'imager RSS growth MiB',
          value: growth.imager,
          baseline: uploadMib,
          ratio: round(growth.imager / uploadMib, 2),
          target: `≤ ${target.imager_rss_growth_max_mib} MiB`,
          met: rssMet,
        },
        {
          figure: 'zip bytes vs upload bytes',
          value: zipBytes,
          baseline: totalBytes,
          ratio: round(zipBytes / totalBytes, 2),
          target: '≤ 1',
          met: zipMet,
        },
        {
          figure: `${CONCURRENT} concurrent uploads: imager peak RSS MiB`,
          value: concurrent.imager_peak_rss_mib,
          baseline: '',
          ratio: '',
          target: `< ${target.concurrent_imager_peak_max_mib}`,
          met: concurrentMet,
        },
        {
          figure: `${CONCURRENT} concurrent uploads: all 202 after ms (MiB/s in)`,
          value: concurrent.wall_ms,
          baseline: '',
          ratio: '',
          target: `${concurrent.mib_per_s} MiB/s`,
          met: '',
        },
        {
          figure: `${CONCURRENT} concurrent hostile uploads: imager peak RSS MiB (decode budget ${hostile.decode_budget_mib})`,
          value: hostile.imager_peak_rss_mib,
          baseline: '',
          ratio: '',
          target: '',
          met: '',
        },
        {
          figure: 'imager peak RSS MiB',
          value: peak.imager,
          baseline: uploadMib,
          ratio: round(peak.imager / uploadMib, 2),
          target: '',
          met: '',
        },
        {
          figure: 'gateway RSS growth MiB',
          value: growth.gateway,
          baseline: uploadMib,
          ratio: round(growth.gateway / uploadMib, 2),
          target: '',
          met: '',
        },
        {
          figure: 'gateway peak RSS MiB',
          value: peak.gateway,
          baseline: uploadMib,
          ratio: round(peak.gateway / uploadMib, 2),
          target: '',
          met: '',
        },
      ],
      notes: [
        `${photos.length} photos, ${uploadMib} MiB uploaded, zip ${round(mib(trials[0].zip_bytes), 1)} MiB; baseline = one PutObject of ${uploadMib} MiB; ${TRIALS} timed uploads after an untimed one`,
        'stages (median ms; the upload, the checks and the bucket upload overlap by design):',
        ...Object.entries(stages).map(([k, v]) => `  ${String(v).padStart(6)}  ${k}`),
        `CPU seconds per upload: ${Object.entries(cpuMedian)
          .map(([n, s]) => `${n} ${s}`)
          .join(', ')}`,
        `isolated check + normalise of the same photos (imager's checkPhotos, concurrency ${normaliseOnly.concurrency}, no network or bucket): ${normaliseOnly.ms} ms wall, ${normaliseOnly.cpu_s} s CPU`,
        `${CONCURRENT} concurrent uploads of the same ${photos.length} photos: all answered 202 after ${concurrent.wall_ms} ms (${concurrent.mib_per_s} MiB/s, ${concurrent.photos_per_s} photos/s in), each in ${concurrent.each_ms.join('/')} ms; imager peak RSS ${concurrent.imager_peak_rss_mib} MiB (from ${concurrent.imager_idle_rss_mib}), gateway ${concurrent.gateway_peak_rss_mib} MiB`,
        `${CONCURRENT} concurrent hostile uploads (each: a PNG declaring 50 000×50 000, a HEIC declaring 60 000×40 000, ${hostile.heavy_per_upload} PNGs of ${hostile.heavy_size} px that decode whole): answers ${hostile.statuses.join('/')}, codes ${hostile.codes.join(', ')}; imager peak RSS ${hostile.imager_peak_rss_mib} MiB (from ${hostile.imager_idle_rss_mib}), decode budget ${hostile.decode_budget_mib} MiB`,
        `RSS MiB (VmHWM, reset before each upload): imager fresh ${freshMib.imager}, first upload peak ${first.peak_rss_mib.imager}, later peaks ${trials.map((t) => t.peak_rss_mib.imager).join('/')}, idle between uploads ${median(trials.map((t) => t.idle_rss_mib.imager))}; gateway fresh ${freshMib.gateway}, peak ${peak.gateway}`,
      ],
    };
  } finally {
    s3.destroy();
    await db.end().catch(() => undefined);
    await stack.stop();
  }
}

/** CONCURRENT uploads of the same photos at once: throughput in, and the peak memory of the imager. */
async function concurrentUploads(stack, freshKey, body, pids, db, totalBytes) {
  const payments = [];
  for (let i = 0; i < CONCURRENT; i++) {
    const key = await freshKey();
    payments.push({ key, id: await paidPayment(stack, key) });
  }
  await sleep(300);
  const idle = { gateway: rss(pids.gateway), imager: rss(pids.imager) };
  resetPeakRss(pids.gateway);
  resetPeakRss(pids.imager);
  const t0 = now();
  const results = await Promise.all(
    payments.map(({ key, id }) => upload(`${stack.info.gatewayUrl}/api/v1/versions/train/${id}`, key, body)),
  );
  const wall = now() - t0;
  const peak = { gateway: peakRss(pids.gateway), imager: peakRss(pids.imager) };
  for (const res of results) {
    if (res.status !== 202)
      throw new Error(`concurrent train answered ${res.status}: ${res.body.slice(0, 300)}`);
  }
  // Let the sandbox download every dataset before anything else is measured.
  for (const res of results) {
    const { rows } = await db.query('SELECT replicate_training_id FROM trainer.versions WHERE id = $1', [
      JSON.parse(res.body).version_id,
    ]);
    await waitFor(
      async () => (await stack.call('training', { id: rows[0].replicate_training_id }))?.dataset,
      { timeoutMs: 120_000, intervalMs: 200, what: 'the sandbox to download the dataset' },
    );
  }
  const out = {
    uploads: CONCURRENT,
    wall_ms: round(wall, 0),
    each_ms: results.map((r) => round(r.responseMs, 0)),
    mib_per_s: round(mib(totalBytes * CONCURRENT) / (wall / 1000), 1),
    photos_per_s: round((JSON.parse(results[0].body).images * CONCURRENT) / (wall / 1000), 1),
    imager_idle_rss_mib: round(mib(idle.imager), 0),
    imager_peak_rss_mib: round(mib(peak.imager), 0),
    gateway_peak_rss_mib: round(mib(peak.gateway), 0),
  };
  log(
    `train: ${CONCURRENT} concurrent uploads: all 202 after ${out.wall_ms} ms, imager peak ${out.imager_peak_rss_mib} MiB`,
  );
  return out;
}

/** A tiny PNG whose header declares width × height. */
async function pngDeclaring(width, height) {
  const sharp = require('sharp');
  const zlib = await import('node:zlib');
  const png = Buffer.from(
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } })
      .png()
      .toBuffer(),
  );
  const ihdr = png.indexOf('IHDR');
  png.writeUInt32BE(width, ihdr + 4);
  png.writeUInt32BE(height, ihdr + 8);
  png.writeUInt32BE(zlib.crc32(png.subarray(ihdr, ihdr + 17)), ihdr + 17);
  return png;
}

/**
 * CONCURRENT hostile uploads at once, each refused (422): decompression bombs (a PNG and a HEIC
 * whose headers declare far more pixels than the ceiling) next to legitimate-looking PNGs just
 * under the ceiling, which compress to nothing but decode whole — the most decode memory a small
 * upload can ask for. The imager must stay within its budget.
 */
async function hostileUploads(stack, freshKey, pids) {
  const sharp = require('sharp');
  const heavyPerUpload = 3;
  const side = 6000; // 36 MP, under the 40 MP ceiling
  const heic = Buffer.from(fs.readFileSync(HEIC_FIXTURE));
  const ispe = heic.indexOf('ispe');
  heic.writeUInt32BE(60_000, ispe + 8);
  heic.writeUInt32BE(40_000, ispe + 12);
  const bomb = await pngDeclaring(50_000, 50_000);
  const bodies = [];
  for (let u = 0; u < CONCURRENT; u++) {
    const files = [
      { name: 'bomb.png', data: bomb },
      { name: 'huge.heic', data: heic },
    ];
    for (let i = 0; i < heavyPerUpload; i++) {
      const background = { r: (u * 60 + i * 20) % 256, g: (i * 90) % 256, b: 120 };
      const data = await sharp({ create: { width: side, height: side, channels: 3, background } })
        .png({ compressionLevel: 9, interlace: true }) // interlaced: no sequential decode
        .toBuffer();
      files.push({ name: `heavy-${i}.png`, data });
    }
    bodies.push(multipart(files, { class: 'man', trigger_word: 'TOK' }));
  }
  const payments = [];
  for (let i = 0; i < CONCURRENT; i++) {
    const key = await freshKey();
    payments.push({ key, id: await paidPayment(stack, key) });
  }
  await sleep(300);
  const idle = rss(pids.imager);
  resetPeakRss(pids.imager);
  const results = await Promise.all(
    payments.map(({ key, id }, i) =>
      upload(`${stack.info.gatewayUrl}/api/v1/versions/train/${id}`, key, bodies[i]),
    ),
  );
  const peak = peakRss(pids.imager);
  const codes = new Set();
  for (const res of results) {
    try {
      for (const e of JSON.parse(res.body).errors ?? []) codes.add(e.code);
    } catch {
      // not JSON
    }
  }
  const budget = JSON.parse(process.env.BENCH_SERVICE_ENV ?? '{}').imager?.IMAGER_DECODE_BUDGET_MIB ?? 512;
  const out = {
    uploads: CONCURRENT,
    heavy_per_upload: heavyPerUpload,
    heavy_size: `${side}×${side}`,
    upload_bytes: bodies[0].length,
    statuses: results.map((r) => r.status),
    codes: [...codes].sort(),
    imager_idle_rss_mib: round(mib(idle), 0),
    imager_peak_rss_mib: round(mib(peak), 0),
    decode_budget_mib: Number(budget),
  };
  log(
    `train: ${CONCURRENT} hostile uploads: ${out.statuses.join('/')}, imager peak ${out.imager_peak_rss_mib} MiB`,
  );
  return out;
}

/** The processes an upload's bytes go through (trainer relays them from the gateway to imager). */
const PROFILED = ['gateway', 'trainer', 'imager'];

/** One more upload with those processes under node --cpu-prof: where their CPU goes. */
async function profileUpload(stack, freshKey, body) {
  const dir = path.join(CACHE_DIR, 'profiles', 'train');
  fs.rmSync(dir, { recursive: true, force: true });
  log(`train: profiling one upload (node --cpu-prof on ${PROFILED.join(', ')})`);
  for (const name of PROFILED) {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    await stack.call('restart', { name, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, name)}`] });
  }
  await stack.call('waitReady', { gatewayUrl: stack.info.gatewayUrl });
  const hr = () => Number(process.hrtime.bigint() / 1000n);
  // Trainer's channel to the restarted imager may still be in its reconnect back-off: a 503
  // leaves nothing behind (the payment is given back), so try again with a new one for a while.
  const until = Date.now() + 60_000;
  let res;
  let window;
  do {
    const apiKey = await freshKey();
    const paymentId = await paidPayment(stack, apiKey);
    window = { fromUs: hr() };
    res = await upload(`${stack.info.gatewayUrl}/api/v1/versions/train/${paymentId}`, apiKey, body);
    window.toUs = hr();
  } while (res.status === 503 && Date.now() < until);
  if (res.status !== 202) throw new Error(`train answered ${res.status} under the profiler`);
  for (const name of PROFILED) await stack.call('stopChild', { name });
  const out = { under_profiler_ms: round(res.responseMs, 0) };
  for (const name of PROFILED) {
    const file = newestProfile(path.join(dir, name));
    if (file) out[name] = summariseProfile(file, { top: 25, window });
  }
  return out;
}

export function report(result) {
  if (!result.profiles) return;
  console.log(
    `\n  train profiles (node --cpu-prof, one upload: ${result.profiles.under_profiler_ms} ms under the profiler)`,
  );
  for (const name of PROFILED) if (result.profiles[name]) printProfile(name, result.profiles[name]);
  const p = result.profiles.imager;
  if (p) {
    const js = round(((p.busy_pct / 100) * p.wall_ms) / 1000, 1);
    console.log(
      `\n  imager: its JavaScript thread was busy ${js} s of the ${round(p.wall_ms / 1000, 1)} s upload; the process used ${result.figures.cpu_seconds_per_upload.imager} s of CPU per upload — the rest is libvips decoding and encoding in its worker threads, which a JS profile does not see (compare the isolated check + normalise: ${result.figures.isolated_normalise.cpu_s} s CPU).`,
    );
  }
}

/** The imager's own check-and-normalise step alone, in a fresh process, on the same photos. */
function isolatedNormalise() {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(BENCH_DIR, 'lib', 'normalise-only.mjs'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.once('message', resolve);
    child.once('error', reject);
    child.once('exit', (code) =>
      code ? reject(new Error(`normalise-only exited with ${code}`)) : undefined,
    );
  });
}
