/**
 * Training end to end: REST through the gateway, billing, imager, trainer, Postgres, Redis, the
 * bucket, and the Stripe and Replicate sandboxes, whose signed webhooks come back through the
 * gateway. No mocks of our code. Trainings here run "forever" (trainingMs: 10 min) and are finished
 * with `replicate.complete`, so each test decides when Replicate reports back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import JSZip from 'jszip';
import { Client } from 'pg';
import sharp from 'sharp';
import { signWebhook } from '@atelier/infra/sandbox/replicate';
import {
  distinctPhotos,
  photoForm,
  scheduleCheck,
  startMesh,
  waitFor,
  type Mesh,
  postReplicateWebhook,
  signedWebhookHeaders,
} from '@atelier/infra/testing';

let mesh: Mesh;
let db: Client;
let key: string;
let photos: Photo[];

interface Photo {
  name: string;
  type: string;
  data: Buffer;
}

interface VersionJson {
  version_id: string;
  status: string;
  is_ready: boolean;
  class: string;
  trigger_word: string;
  model: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  pushed_at: string | null;
  training_seconds: number | null;
  error: string | null;
  images: { granted: number; used: number; remaining: number };
}

const HEIC_FIXTURE = path.join(__dirname, '../../services/imager/test/fixtures/photo-768x576.heic');

beforeAll(async () => {
  mesh = await startMesh({
    replicate: { trainingMs: 600_000 },
    env: { RATE_LIMIT_PER_WINDOW: '10000', RECONCILE_INTERVAL_MS: '200' },
  });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  ({ apiKey: key } = await mesh.createAccount());
  photos = await makePhotos();
});
afterAll(async () => {
  await db?.end();
  await mesh?.stop();
});
afterEach(() => mesh.replicate.faults.clear());

/** One solid colour band per half, so orientation and identity can be read back from pixels. */
async function twoTone(
  width: number,
  height: number,
  top: [number, number, number],
  bottom: [number, number, number],
) {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const [r, g, b] = y < height / 2 ? top : bottom;
    for (let x = 0; x < width; x++) raw.set([r, g, b], (y * width + x) * 3);
  }
  return sharp(raw, { raw: { width, height, channels: 3 } });
}

/**
 * Six photos: four landscape JPEG/PNG/WebP in distinct colours, the HEIC fixture (768×576), and a
 * portrait photo stored sideways (800×600 pixels) with EXIF orientation 6 — red on top once upright.
 */
async function makePhotos(): Promise<Photo[]> {
  const upright = await (
    await twoTone(600, 800, [220, 20, 20], [20, 20, 220])
  )
    .raw()
    .toBuffer({ resolveWithObject: true });
  const sideways = await sharp(upright.data, { raw: { width: 600, height: 800, channels: 3 } })
    .rotate(270)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const rotated = await sharp(sideways.data, {
    raw: { width: sideways.info.width, height: sideways.info.height, channels: 3 },
  })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toBuffer();
  return [
    { name: 'sideways.jpg', type: 'image/jpeg', data: rotated },
    {
      name: 'green.jpg',
      type: 'image/jpeg',
      data: await (await twoTone(800, 600, [20, 200, 20], [200, 200, 20])).jpeg().toBuffer(),
    },
    {
      name: 'cyan.png',
      type: 'image/png',
      data: await (await twoTone(800, 600, [20, 200, 200], [120, 20, 120])).png().toBuffer(),
    },
    {
      name: 'grey.webp',
      type: 'image/webp',
      data: await (await twoTone(1024, 640, [128, 128, 128], [250, 250, 250])).webp().toBuffer(),
    },
    {
      name: 'orange.jpg',
      type: 'image/jpeg',
      data: await (await twoTone(900, 700, [250, 140, 0], [0, 0, 0])).jpeg().toBuffer(),
    },
    { name: 'phone.heic', type: 'image/heic', data: fs.readFileSync(HEIC_FIXTURE) },
  ];
}

const upload = (paymentId: string, apiKey = key, files = photos) =>
  mesh.api(`/api/v1/versions/train/${paymentId}`, { key: apiKey, method: 'POST', body: photoForm(files) });

async function problem(res: Response) {
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  return (await res.json()) as { type: string; status: number; detail: string };
}

async function payment(id: string, apiKey = key) {
  return (await (await mesh.api(`/api/v1/payments/${id}`, { key: apiKey })).json()) as {
    status: string;
    version_id: string | null;
  };
}

async function createPayment(body: Record<string, unknown> = { plan_id: 'basic_init' }, apiKey = key) {
  const res = await mesh.api('/api/v1/payments/create', { key: apiKey, method: 'POST', json: body });
  expect(res.status).toBe(201);
  return (await res.json()) as { payment_id: string; checkout_url: string };
}

/** Created through the gateway, paid on the sandbox's checkout page; the Stripe webhook made it paid. */
async function paidPayment(
  body: Record<string, unknown> = { plan_id: 'basic_init' },
  apiKey = key,
): Promise<string> {
  const p = await createPayment(body, apiKey);
  expect(
    (await fetch(p.checkout_url, { method: 'POST', headers: { accept: 'application/json' } })).status,
  ).toBe(200);
  await waitFor(async () => (await payment(p.payment_id, apiKey)).status === 'paid', {
    what: 'the payment to be paid',
  });
  return p.payment_id;
}

/** Calls of one gRPC method a service has answered, whatever their status, from its /metrics. */
async function served(service: 'billing' | 'imager', method: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${mesh[service].metricsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter(
      (line) => line.startsWith('atelier_grpc_server_handled_total{') && line.includes(`method="${method}"`),
    )
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

async function info(versionId: string, apiKey = key): Promise<VersionJson> {
  const res = await mesh.api(`/api/v1/versions/info/${versionId}`, { key: apiKey });
  expect(res.status).toBe(200);
  return (await res.json()) as VersionJson;
}

/** Uploads for a paid payment and answers the accepted version. */
async function train(): Promise<{ paymentId: string; versionId: string }> {
  const paymentId = await paidPayment();
  const res = await upload(paymentId);
  if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
  return { paymentId, versionId: ((await res.json()) as { version_id: string }).version_id };
}

async function trainingOf(versionId: string): Promise<string> {
  const { rows } = await db.query<{ replicate_training_id: string }>(
    'SELECT replicate_training_id FROM trainer.versions WHERE id = $1',
    [versionId],
  );
  return rows[0]!.replicate_training_id;
}

const waitReady = (versionId: string) =>
  waitFor(
    async () => {
      const v = await info(versionId);
      return v.is_ready ? v : undefined;
    },
    { timeoutMs: 15_000, what: `version ${versionId} to be ready` },
  );

async function readObject(objectKey: string): Promise<Buffer> {
  const s3 = new S3Client({
    endpoint: mesh.env.S3_ENDPOINT,
    region: mesh.env.S3_REGION,
    credentials: { accessKeyId: mesh.env.S3_ACCESS_KEY_ID!, secretAccessKey: mesh.env.S3_SECRET_ACCESS_KEY! },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: mesh.env.S3_BUCKET, Key: objectKey }));
    return Buffer.from(await res.Body!.transformToByteArray());
  } finally {
    s3.destroy();
  }
}

describe('training a model', () => {
  it('pay → upload 6 photos (HEIC, EXIF-rotated) → 202 → webhook → ready with credits; the zip holds 6 upright JPEGs without EXIF', async () => {
    const paymentId = await paidPayment();
    const res = await mesh.api(`/api/v1/versions/train/${paymentId}`, {
      key,
      method: 'POST',
      body: photoForm(photos, { class: 'man', trigger_word: 'sks_person' }),
    });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { version_id: string; status: string; images: number };
    expect(accepted).toEqual({
      version_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      // The sandbox's first webhook can be applied before this answer is written (a busy machine).
      status: expect.stringMatching(/^(starting|processing)$/),
      images: 6,
    });
    const versionId = accepted.version_id;

    const started = await info(versionId);
    // The sandbox's training may already be processing when this is read (a busy machine).
    expect(['starting', 'processing']).toContain(started.status);
    expect(started).toEqual(
      expect.objectContaining({
        is_ready: false,
        class: 'man',
        trigger_word: 'sks_person',
        model: `atelier/v-${versionId}`,
        pushed_at: null,
      }),
    );
    // Credits come once the version is ready: none of a version that may never be are usable.
    expect(started.images).toEqual({ granted: 0, used: 0, remaining: 0 });
    expect((await payment(paymentId)).version_id).toBe(versionId);

    // The zip in the bucket: what Replicate was given to download.
    const { rows } = await db.query<{ dataset_key: string }>(
      'SELECT dataset_key FROM trainer.versions WHERE id = $1',
      [versionId],
    );
    const zip = await JSZip.loadAsync(await readObject(rows[0]!.dataset_key));
    const entries = Object.values(zip.files).filter((f) => !f.dir);
    expect(entries).toHaveLength(6);
    const images = await Promise.all(
      entries.map(async (e) => ({ name: e.name, data: await e.async('nodebuffer') })),
    );
    for (const image of images) {
      expect(image.name).toMatch(/\.jpe?g$/i);
      const meta = await sharp(image.data).metadata();
      expect(meta.format).toBe('jpeg');
      expect(meta.exif).toBeUndefined();
      expect(meta.orientation ?? 1).toBe(1);
    }
    // The sideways photo is the only portrait one, now upright: red on top, blue below.
    const portraits = await Promise.all(
      images.map(async (i) => ({ i, meta: await sharp(i.data).metadata() })),
    );
    const portrait = portraits.filter((p) => p.meta.height > p.meta.width);
    expect(portrait.map((p) => [p.meta.width, p.meta.height])).toEqual([[600, 800]]);
    const { data, info: px } = await sharp(portrait[0]!.i.data).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) =>
      Array.from(data.subarray((y * px.width + x) * px.channels, (y * px.width + x) * px.channels + 3));
    expect(at(300, 100)[0]).toBeGreaterThan(180); // red
    expect(at(300, 700)[2]).toBeGreaterThan(180); // blue
    // The HEIC came through as a 768×576 JPEG.
    expect(portraits.some((p) => p.meta.width === 768 && p.meta.height === 576)).toBe(true);

    // Replicate reports back through the signed webhook (the reconciler is told to look much
    // later, so only the webhook can do it): ready, pushed, credits intact.
    await scheduleCheck(db, 'trainer.versions', versionId, 60 * 60 * 1000);
    const trainingId = await trainingOf(versionId);
    expect(mesh.replicate.training(trainingId)!.object.input).toEqual(
      expect.objectContaining({ trigger_word: 'sks_person' }),
    );
    await mesh.replicate.complete(trainingId);
    const ready = await waitReady(versionId);
    expect(ready).toEqual(
      expect.objectContaining({
        status: 'succeeded',
        is_ready: true,
        error: null,
        images: { granted: 100, used: 0, remaining: 100 },
      }),
    );
    expect(ready.pushed_at).not.toBeNull();
    expect(ready.completed_at).not.toBeNull();
    expect(ready.training_seconds).toBeGreaterThan(0);
    await mesh.replicate.webhooksIdle();
    expect(
      mesh.replicate
        .deliveries()
        .filter((d) => d.runId === trainingId)
        .map((d) => d.status),
    ).toEqual(['delivered', 'delivered']);
  });

  it('relays a photo of several MiB whole: the zip holds its bytes exactly as uploaded', async () => {
    // Noise compresses badly: ~2.6 MB at 1600×1600, so it crosses gateway → trainer → imager as
    // several gRPC messages, and passes the checks untouched (a plain sRGB JPEG within bounds).
    const noise = await sharp(randomBytes(1600 * 1600 * 3), {
      raw: { width: 1600, height: 1600, channels: 3 },
    })
      .jpeg({ quality: 95 })
      .toBuffer();
    expect(noise.length).toBeGreaterThan(2 * 1024 * 1024);
    const files = [...(await distinctPhotos(4)), { name: 'noise.jpg', type: 'image/jpeg', data: noise }];
    const res = await upload(await paidPayment(), key, files);
    expect(res.status).toBe(202);
    const { version_id: versionId } = (await res.json()) as { version_id: string };
    const { rows } = await db.query<{ dataset_key: string }>(
      'SELECT dataset_key FROM trainer.versions WHERE id = $1',
      [versionId],
    );
    const zip = await JSZip.loadAsync(await readObject(rows[0]!.dataset_key));
    const stored = await Promise.all(Object.values(zip.files).map((f) => f.async('nodebuffer')));
    expect(stored.filter((data) => data.equals(noise))).toHaveLength(1);
  });

  it('refuses an unpaid (402), used (409), add-on (409) or foreign (404) payment', async () => {
    const unpaid = await createPayment();
    const res402 = await upload(unpaid.payment_id);
    expect(res402.status).toBe(402);
    expect((await problem(res402)).type).toMatch(/\/payment-not-paid$/);

    const { paymentId: used, versionId } = await train();
    const res409 = await upload(used);
    expect(res409.status).toBe(409);
    expect((await problem(res409)).type).toMatch(/\/payment-already-used$/);

    await mesh.replicate.complete(await trainingOf(versionId));
    await waitReady(versionId);
    const addOn = await paidPayment({ plan_id: 'basic_extra_creds', version_id: versionId });
    const resAddOn = await upload(addOn);
    expect(resAddOn.status).toBe(409);
    expect((await problem(resAddOn)).type).toMatch(/\/payment-not-for-training$/);

    const other = await mesh.createAccount();
    const foreign = await paidPayment({ plan_id: 'basic_init' }, other.apiKey);
    const res404 = await upload(foreign);
    expect(res404.status).toBe(404);
    await problem(res404);
    expect((await payment(foreign, other.apiKey)).version_id).toBeNull();
  });

  it('refuses a callback_url callbacks may not go to with 400 before the payment is claimed or a photo reaches imager', async () => {
    const paymentId = await paidPayment();
    const before = {
      claims: await served('billing', 'ClaimInitPayment'),
      packs: await served('imager', 'PackTrainingImages'),
    };
    // The test mesh allows http and private addresses (WEBHOOK_ALLOW_PRIVATE): these are refused anyway.
    for (const [where, url, detail] of [
      ['form field', 'https://user:pw@hooks.example.com/', 'callback_url must not carry credentials'],
      ['query', 'ftp://hooks.example.com/', 'callback_url must be https'],
    ] as const) {
      const inQuery = where === 'query';
      const res = await mesh.api(
        `/api/v1/versions/train/${paymentId}${inQuery ? `?callback_url=${encodeURIComponent(url)}` : ''}`,
        {
          key,
          method: 'POST',
          body: photoForm(photos, inQuery ? { class: 'man' } : { class: 'man', callback_url: url }),
        },
      );
      expect({ where, status: res.status }).toEqual({ where, status: 400 });
      expect(await problem(res)).toMatchObject({
        type: expect.stringMatching(/\/invalid-argument$/),
        detail,
      });
    }
    expect(await payment(paymentId)).toMatchObject({ status: 'paid', version_id: null });
    expect({
      claims: await served('billing', 'ClaimInitPayment'),
      packs: await served('imager', 'PackTrainingImages'),
    }).toEqual(before);
  });

  it('starts exactly one training from 20 parallel uploads for one payment', async () => {
    const paymentId = await paidPayment();
    const trainingsBefore = mesh.replicate.trainings().length;
    const responses = await Promise.all(Array.from({ length: 20 }, () => upload(paymentId)));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([202, ...Array<number>(19).fill(409)]);
    expect(mesh.replicate.trainings().length).toBe(trainingsBefore + 1);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM trainer.versions WHERE payment_id = $1',
      [paymentId],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('an Idempotency-Key replays the upload for the same photos and answers 422 for other photos, starting nothing more', async () => {
    const paymentId = await paidPayment();
    const idempotencyKey = randomUUID();
    const send = (files: Photo[], fields?: Record<string, string>) =>
      mesh.api(`/api/v1/versions/train/${paymentId}`, {
        key,
        method: 'POST',
        headers: { 'idempotency-key': idempotencyKey },
        body: photoForm(files, fields),
      });
    const trainingsBefore = mesh.replicate.trainings().length;
    const first = await send(photos);
    expect(first.status).toBe(202);
    const accepted = await first.text();

    // The same photos again (a new multipart boundary, renamed files): the first answer, replayed.
    const again = await send(photos.map((p, i) => ({ ...p, name: `again-${i}.jpg` })));
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(accepted);

    // Other photos under the same key: one photo swapped, one byte of one photo changed, another class.
    const swapped = [...photos.slice(0, -1), (await distinctPhotos(1, 700))[0]!];
    const flipped = photos.map((p, i) =>
      i === 2 ? { ...p, data: Buffer.from(p.data.map((b, j) => (j === p.data.length - 3 ? b ^ 1 : b))) } : p,
    );
    for (const res of [await send(swapped), await send(flipped), await send(photos, { class: 'woman' })]) {
      expect(res.status).toBe(422);
      expect((await problem(res)).type).toBe('https://atelier.dev/problems/idempotency-mismatch');
    }

    // One training, one version, the payment used once by it.
    expect(mesh.replicate.trainings().length).toBe(trainingsBefore + 1);
    const { rows } = await db.query('SELECT id FROM trainer.versions WHERE payment_id = $1', [paymentId]);
    const { version_id } = JSON.parse(accepted) as { version_id: string };
    expect(rows).toEqual([{ id: version_id }]);
    expect(await payment(paymentId)).toEqual(expect.objectContaining({ status: 'paid', version_id }));
  });

  it('two uploads at once under one Idempotency-Key start one training (the other is 409 in flight, or its replay)', async () => {
    const paymentId = await paidPayment();
    const idempotencyKey = randomUUID();
    const trainingsBefore = mesh.replicate.trainings().length;
    const send = () =>
      mesh.api(`/api/v1/versions/train/${paymentId}`, {
        key,
        method: 'POST',
        headers: { 'idempotency-key': idempotencyKey },
        body: photoForm(photos),
      });
    const responses = await Promise.all([send(), send()]);
    const statuses = responses.map((r) => r.status).sort();
    expect([
      [202, 409],
      [202, 202],
    ]).toContainEqual(statuses);
    expect(mesh.replicate.trainings().length).toBe(trainingsBefore + 1);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM trainer.versions WHERE payment_id = $1',
      [paymentId],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('answers 503 when Replicate fails the create; the payment stays unused and a retry succeeds', async () => {
    const paymentId = await paidPayment();
    mesh.replicate.faults.failNextApiCalls({ status: 502, method: 'POST', path: /\/trainings$/ });
    const failed = await upload(paymentId);
    expect(failed.status).toBe(503);
    await problem(failed);
    expect(await payment(paymentId)).toEqual(expect.objectContaining({ status: 'paid', version_id: null }));

    const retried = await upload(paymentId);
    expect(retried.status).toBe(202);
    const { version_id } = (await retried.json()) as { version_id: string };
    expect((await payment(paymentId)).version_id).toBe(version_id);
  });
});

describe('Replicate webhooks and the reconciler', () => {
  it('finishes a version whose webhooks are never sent', async () => {
    mesh.replicate.faults.dropWebhooks();
    const { versionId } = await train();
    const trainingId = await trainingOf(versionId);
    await mesh.replicate.complete(trainingId);
    const ready = await waitReady(versionId);
    expect(ready.pushed_at).not.toBeNull();
    expect(
      mesh.replicate
        .deliveries()
        .filter((d) => d.runId === trainingId)
        .every((d) => d.status === 'dropped'),
    ).toBe(true);
  });

  it('applies a duplicated webhook once and refuses a bad signature with 400', async () => {
    const { versionId } = await train();
    const trainingId = await trainingOf(versionId);
    await mesh.replicate.complete(trainingId);
    const ready = await waitReady(versionId);
    await mesh.replicate.webhooksIdle();
    const completed = mesh.replicate
      .deliveries()
      .find((d) => d.runId === trainingId && d.events.includes('completed'))!;
    expect(completed.status).toBe('delivered');

    const post = (headers: Record<string, string>, body = completed.body) =>
      postReplicateWebhook(mesh, 'training', body, headers);
    const signedHeaders = (id: string, body: string) =>
      signedWebhookHeaders(mesh.replicate.webhookSecret, body, id);

    // Redelivery of the same message: 200, nothing changes, still one record of it.
    const again = await post(signedHeaders(completed.webhookId, completed.body));
    expect(again.status).toBe(200);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM trainer.webhook_events WHERE webhook_id = $1',
      [completed.webhookId],
    );
    expect(rows[0]!.n).toBe(1);
    expect(await info(versionId)).toEqual(ready);

    // A body that does not match its signature, a signature made with another secret, no signature.
    const forged = completed.body.replace('"succeeded"', '"failed"');
    for (const headers of [
      signedHeaders(`msg_${randomUUID()}`, completed.body),
      {
        ...signedHeaders(`msg_${randomUUID()}`, forged),
        'webhook-signature': signWebhook(
          `whsec_${Buffer.from('another secret').toString('base64')}`,
          'x',
          1,
          forged,
        ),
      },
      { 'webhook-id': `msg_${randomUUID()}`, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) },
    ]) {
      const res = await post(headers, forged);
      expect(res.status).toBe(400);
      expect((await problem(res)).type).toMatch(/invalid-signature$/);
    }
    expect((await info(versionId)).status).toBe('succeeded');
  });

  it('cancels a running training (canceled), and a second cancel is a 409', async () => {
    const { versionId } = await train();
    const trainingId = await trainingOf(versionId);
    const res = await mesh.api(`/api/v1/versions/${versionId}/cancel`, { key, method: 'POST' });
    expect(res.status).toBe(200);
    expect((await res.json()) as VersionJson).toEqual(
      expect.objectContaining({ version_id: versionId, status: 'canceled', is_ready: false }),
    );
    expect(mesh.replicate.training(trainingId)!.object.status).toBe('canceled');
    const again = await mesh.api(`/api/v1/versions/${versionId}/cancel`, { key, method: 'POST' });
    expect(again.status).toBe(409);
    await problem(again);
    await mesh.replicate.webhooksIdle();
    expect((await info(versionId)).status).toBe('canceled');
  });

  it('answers 404 for another account’s version', async () => {
    const { versionId } = await train();
    const other = await mesh.createAccount();
    expect((await mesh.api(`/api/v1/versions/info/${versionId}`, { key: other.apiKey })).status).toBe(404);
    expect(
      (await mesh.api(`/api/v1/versions/${versionId}/cancel`, { key: other.apiKey, method: 'POST' })).status,
    ).toBe(404);
  });
});
