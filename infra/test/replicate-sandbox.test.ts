/**
 * The Replicate sandbox, driven by the official `replicate` client exactly as the services use it.
 * A small local server plays the customer's side: it serves the training zip (as the bucket would)
 * and receives the webhooks.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import JSZip from 'jszip';
import Replicate, { validateWebhook, type ApiError, type Prediction, type Training } from 'replicate';
import sharp from 'sharp';
import { startReplicateSandbox, type ReplicateSandbox } from '../sandbox/replicate';

const TRAINER = {
  owner: 'ostris',
  name: 'flux-dev-lora-trainer',
  version: 'e440909d3512c31646ee2e0c7d6f6f4923224863a6a10c494606e79fb5844497',
};

// ---------------------------------------------------------------- helpers

interface Hook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Receiver {
  url: string;
  hooks: Hook[];
  /** The next `n` webhook POSTs answer 500. */
  failNext(n: number): void;
  close(): Promise<void>;
}

async function startReceiver(zip: Buffer): Promise<Receiver> {
  const hooks: Hook[] = [];
  let failures = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/dataset.zip') {
        res.writeHead(200, { 'content-type': 'application/zip' }).end(zip);
      } else if (req.method === 'GET' && req.url === '/not-a-zip.txt') {
        res
          .writeHead(200, { 'content-type': 'text/plain' })
          .end('these are not the photos you are looking for');
      } else if (req.method === 'POST' && req.url?.startsWith('/hooks/')) {
        if (failures > 0) {
          failures--;
          res.writeHead(500).end();
          return;
        }
        hooks.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(204).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hooks,
    failNext: (n) => (failures = n),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/** Polls `probe` until it returns a truthy value; fails after `timeoutMs`. */
async function waitFor<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 10_000): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    if ((err as ApiError).response) return err as ApiError;
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** Our own check of the Standard Webhooks signature, as the gateway will do it. */
function verifySignature(secret: string, hook: Hook): boolean {
  const id = String(hook.headers['webhook-id']);
  const timestamp = String(hook.headers['webhook-timestamp']);
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${hook.body}`).digest();
  return String(hook.headers['webhook-signature'])
    .split(' ')
    .some((part) => {
      const [version, sig = ''] = part.split(',');
      const given = Buffer.from(sig, 'base64');
      return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
    });
}

async function makeZip(): Promise<Buffer> {
  const zip = new JSZip();
  const photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#884422' } })
    .jpeg()
    .toBuffer();
  for (const name of ['a.jpg', 'b.jpg', 'c.jpg']) zip.file(name, photo, { compression: 'STORE' });
  return zip.generateAsync({ type: 'nodebuffer', compression: 'STORE' });
}

let modelCounter = 0;
async function newModel(client: Replicate, owner = 'atelier'): Promise<string> {
  const name = `version-${++modelCounter}`;
  await client.models.create(owner, name, {
    visibility: 'private',
    hardware: 'gpu-l40s',
    description: 'test',
  });
  return `${owner}/${name}`;
}

/** A destination model with one trained version; returns `owner/name` and the version id. */
async function trainedVersion(
  sb: ReplicateSandbox,
  client: Replicate,
  receiver: Receiver,
): Promise<{ model: string; version: string }> {
  const model = await newModel(client);
  const training = await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
    destination: model as `${string}/${string}`,
    input: { input_images: `${receiver.url}/dataset.zip` },
  });
  await sb.settled(training.id);
  const done = await client.trainings.get(training.id);
  expect(done.status).toBe('succeeded');
  return { model, version: done.output!.version!.split(':')[1]! };
}

const hooksFor = (receiver: Receiver, id: string) =>
  receiver.hooks.filter((h) => (JSON.parse(h.body) as { id: string }).id === id);

// ---------------------------------------------------------------- tests

describe('Replicate sandbox', () => {
  let sb: ReplicateSandbox;
  let client: Replicate;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver(await makeZip());
    sb = await startReplicateSandbox({
      trainingMs: 200,
      predictionMs: 100,
      webhookRetryDelaysMs: [20, 20, 20],
    });
    client = new Replicate({ auth: sb.token, baseUrl: sb.baseUrl });
  });

  afterAll(async () => {
    await sb.stop();
    await receiver.close();
  });

  afterEach(() => sb.faults.clear());

  test('rejects a wrong token with 401 and Replicate error shape', async () => {
    const other = new Replicate({ auth: 'r8_wrong', baseUrl: sb.baseUrl });
    const err = await apiError(other.models.get('atelier', 'anything'));
    expect(err.response.status).toBe(401);
    expect(err.message).toContain('{"detail":"Invalid token.","status":401,"title":"Unauthenticated"}');
  });

  test('models: create, conflict, get with latest_version null, 404 for unknown', async () => {
    const created = await client.models.create('atelier', 'portrait-1', {
      visibility: 'private',
      hardware: 'gpu-l40s',
      description: 'd',
    });
    expect(created).toMatchObject({
      owner: 'atelier',
      name: 'portrait-1',
      visibility: 'private',
      latest_version: null,
    });
    const conflict = await apiError(
      client.models.create('atelier', 'portrait-1', { visibility: 'private', hardware: 'gpu-l40s' }),
    );
    expect(conflict.response.status).toBe(409);
    expect(await client.models.get('atelier', 'portrait-1')).toMatchObject({ latest_version: null });
    expect((await apiError(client.models.get('atelier', 'nope'))).response.status).toBe(404);
  });

  test('deletion: a model with versions is refused until its versions (and their predictions) are deleted', async () => {
    const model = await newModel(client);
    const [owner, name] = model.split('/') as [string, string];
    const training = await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
      destination: model as `${string}/${string}`,
      input: { input_images: `${receiver.url}/dataset.zip`, trigger_word: 'TOK' },
    });
    const done = await waitFor('training to succeed', async () => {
      const t = await client.trainings.get(training.id);
      return t.status === 'succeeded' && t;
    });
    const version = done.output!.version!.split(':')[1]!;
    const prediction = await client.predictions.create({ version, input: { prompt: 'x', num_outputs: 1 } });
    await waitFor('prediction to succeed', async () => {
      const p = await client.predictions.get(prediction.id);
      return p.status === 'succeeded' && p;
    });

    const refused = await apiError(client.request(`/models/${owner}/${name}`, { method: 'DELETE' }));
    expect(refused.response.status).toBe(409);
    const versionGone = await client.request(`/models/${owner}/${name}/versions/${version}`, {
      method: 'DELETE',
    });
    expect(versionGone.status).toBe(202);
    expect(await versionGone.text()).toBe('');
    // Replicate deletes the version's predictions with it, output files included.
    expect((await apiError(client.predictions.get(prediction.id))).response.status).toBe(404);
    expect(sb.predictions().map((p) => p.object.id)).not.toContain(prediction.id);
    expect(sb.models()).toContain(model);

    const modelGone = await client.request(`/models/${owner}/${name}`, { method: 'DELETE' });
    expect(modelGone.status).toBe(204);
    expect(sb.models()).not.toContain(model);
    expect((await apiError(client.models.get(owner, name))).response.status).toBe(404);
    const again = await apiError(client.request(`/models/${owner}/${name}`, { method: 'DELETE' }));
    expect(again.response.status).toBe(404);
  });

  test('training: downloads the zip, pushes a version, sends signed webhooks for every event', async () => {
    const model = await newModel(client);
    const input = {
      input_images: `${receiver.url}/dataset.zip`,
      trigger_word: 'TOK',
      steps: 1000,
      lora_rank: 16,
    };
    const training: Training = await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
      destination: model as `${string}/${string}`,
      input,
      webhook: `${receiver.url}/hooks/training`,
    });
    expect(training).toMatchObject({
      status: 'starting',
      output: null,
      error: null,
      model: `${TRAINER.owner}/${TRAINER.name}`,
      version: TRAINER.version,
      input,
      urls: {
        get: `${sb.baseUrl}/trainings/${training.id}`,
        cancel: `${sb.baseUrl}/trainings/${training.id}/cancel`,
      },
    });

    const done = await waitFor('training to succeed', async () => {
      const t = await client.trainings.get(training.id);
      return t.status === 'succeeded' && t;
    });
    expect(done.output!.version).toMatch(new RegExp(`^${model}:[0-9a-f]{64}$`));
    expect(done.started_at).toBeTruthy();
    expect(done.completed_at).toBeTruthy();
    expect(done.metrics!.predict_time).toBeGreaterThan(0);
    const weights = await fetch(done.output!.weights!);
    expect(weights.status).toBe(200);

    const [owner, name] = model.split('/') as [string, string];
    const m = await client.models.get(owner, name);
    expect(m.latest_version!.id).toBe(done.output!.version!.split(':')[1]);

    // The sandbox really fetched the zip the "bucket" served.
    expect(sb.training(training.id)!.dataset).toMatchObject({ entries: ['a.jpg', 'b.jpg', 'c.jpg'] });
    expect(sb.training(training.id)!.object.input).toEqual(input);

    await sb.webhooksIdle();
    const hooks = hooksFor(receiver, training.id);
    const statuses = hooks.map((h) => (JSON.parse(h.body) as Training).status);
    expect(statuses[0]).toBe('processing');
    expect(statuses.at(-1)).toBe('succeeded');
    expect(statuses.filter((s) => s === 'succeeded')).toHaveLength(1);
    expect(
      sb
        .deliveries()
        .filter((d) => d.runId === training.id)
        .flatMap((d) => d.events),
    ).toEqual(expect.arrayContaining(['start', 'logs', 'output', 'completed']));

    const { key: secret } = await client.webhooks.default.secret.get();
    expect(secret).toBe(sb.webhookSecret);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    for (const hook of hooks) {
      expect(hook.headers['webhook-id']).toMatch(/^msg_/);
      expect(Math.abs(Number(hook.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(300);
      expect(hook.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(verifySignature(secret, hook)).toBe(true);
      const request = new Request(`${receiver.url}${hook.path}`, {
        method: 'POST',
        headers: Object.entries(hook.headers).map(([k, v]) => [k, String(v)] as [string, string]),
        body: hook.body,
      });
      expect(await validateWebhook(request, secret)).toBe(true);
      expect(
        await validateWebhook({
          id: String(hook.headers['webhook-id']),
          timestamp: String(hook.headers['webhook-timestamp']),
          signature: String(hook.headers['webhook-signature']),
          body: hook.body,
          secret,
        }),
      ).toBe(true);
    }
    const tampered = { ...hooks[0]!, body: hooks[0]!.body.replace('processing', 'succeeded') };
    expect(verifySignature(secret, tampered)).toBe(false);
    expect(new Set(hooks.map((h) => h.headers['webhook-id'])).size).toBe(hooks.length);
  });

  test('training: rejected on create without destination or zip input; fails on a non-zip or unreachable dataset', async () => {
    const missing = await apiError(
      client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
        destination: 'atelier/does-not-exist',
        input: { input_images: `${receiver.url}/dataset.zip` },
      }),
    );
    expect(missing.response.status).toBe(404);
    expect(missing.message).toContain('The specified training destination does not exist');

    const model = await newModel(client);
    const noZip = await apiError(
      client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
        destination: model as `${string}/${string}`,
        input: {},
      }),
    );
    expect(noZip.response.status).toBe(422);

    for (const [path, message] of [
      ['/not-a-zip.txt', 'must be a zip file'],
      ['/missing.zip', 'HTTP 404'],
    ] as const) {
      const t = await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
        destination: model as `${string}/${string}`,
        input: { input_images: `${receiver.url}${path}` },
      });
      const failed = await waitFor('training to fail', async () => {
        const got = await client.trainings.get(t.id);
        return got.status === 'failed' && got;
      });
      expect(String(failed.error)).toContain(message);
      expect(failed.output).toBeNull();
    }
    const [owner, name] = model.split('/') as [string, string];
    expect((await client.models.get(owner, name)).latest_version).toBeNull();
  });

  test('prediction: every parameter reaches Replicate, two real PNGs of 768x512, only the completed webhook', async () => {
    const { model, version } = await trainedVersion(sb, client, receiver);
    const input = {
      prompt: 'a photo of TOK as an astronaut',
      negative_prompt: 'blurry',
      num_outputs: 2,
      width: 768,
      height: 512,
      num_inference_steps: 30,
      guidance_scale: 7.5,
      seed: 42,
    };
    const created: Prediction = await client.predictions.create({
      version,
      input,
      webhook: `${receiver.url}/hooks/prediction`,
      webhook_events_filter: ['completed'],
    });
    expect(created).toMatchObject({ status: 'starting', model, version, input, output: null });
    expect(sb.prediction(created.id)!.object.input).toEqual(input);
    expect(sb.prediction(created.id)!.body).toMatchObject({
      version,
      input,
      webhook_events_filter: ['completed'],
    });

    const done = await waitFor('prediction to succeed', async () => {
      const p = await client.predictions.get(created.id);
      return p.status === 'succeeded' && p;
    });
    expect(done.output).toHaveLength(2);
    expect(done.metrics!.predict_time).toBeGreaterThan(0);
    expect(done.started_at).toBeTruthy();
    expect(done.completed_at).toBeTruthy();
    expect(done.logs).toContain('Using seed: 42');
    for (const url of done.output as string[]) {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual(['png', 768, 512]);
    }

    await sb.webhooksIdle();
    const hooks = hooksFor(receiver, created.id);
    expect(hooks).toHaveLength(1);
    expect(JSON.parse(hooks[0]!.body) as unknown).toMatchObject({
      status: 'succeeded',
      output: done.output as unknown,
    });
  });

  test('prediction: owner/name:version, model-scoped route and aspect_ratio', async () => {
    const { model, version } = await trainedVersion(sb, client, receiver);
    const byRef = await client.predictions.create({
      version: `${model}:${version}`,
      input: { prompt: 'x', aspect_ratio: '16:9' },
    });
    const byModel = await client.predictions.create({ model, input: { prompt: 'y' } });
    expect(byModel.version).toBe(version);
    const done = (await sb.settled(byRef.id)).object as Prediction;
    const meta = await sharp(
      Buffer.from(await (await fetch((done.output as string[])[0]!)).arrayBuffer()),
    ).metadata();
    expect([meta.width, meta.height]).toEqual([1344, 768]);
    expect((await sb.settled(byModel.id)).object.status).toBe('succeeded');
  });

  test('prediction: unknown version is 422, bad input is 422 with invalid_fields', async () => {
    const unknown = await apiError(
      client.predictions.create({ version: 'f'.repeat(64), input: { prompt: 'x' } }),
    );
    expect(unknown.response.status).toBe(422);
    expect(unknown.message).toContain('Invalid version or not permitted');

    const { version } = await trainedVersion(sb, client, receiver);
    const bad = await apiError(
      client.predictions.create({ version, input: { prompt: 'x', width: '768', num_outputs: 9 } }),
    );
    expect(bad.response.status).toBe(422);
    expect(bad.message).toContain('input.width');
    expect(bad.message).toContain('input.num_outputs');
  });

  test('Prefer: wait returns the finished prediction', async () => {
    const { version } = await trainedVersion(sb, client, receiver);
    const p = await client.predictions.create({ version, input: { prompt: 'sync' }, wait: 10 });
    expect(p.status).toBe('succeeded');
    expect(p.output).toHaveLength(1);
  });

  test('429: the client retries by itself (ignoring Retry-After) and surfaces it after 6 attempts', async () => {
    const { version } = await trainedVersion(sb, client, receiver);

    // One 429 on a POST: retried at once, the caller never sees it.
    sb.faults.failNextApiCalls({ count: 1, status: 429, method: 'POST', path: '/v1/predictions' });
    const before = sb.calls().length;
    const p = await client.predictions.create({ version, input: { prompt: 'retry me' } });
    expect(
      sb
        .calls()
        .slice(before)
        .map((c) => c.status),
    ).toEqual([429, 201]);

    // Six 429s on a GET: the client gives up and throws; Retry-After (7 s) was not waited for.
    sb.faults.failNextApiCalls({
      count: 6,
      status: 429,
      retryAfterSeconds: 7,
      method: 'GET',
      path: `/v1/predictions/${p.id}`,
    });
    const started = Date.now();
    const before2 = sb.calls().length;
    const err = await apiError(client.predictions.get(p.id));
    expect(err.response.status).toBe(429);
    expect(err.response.headers.get('retry-after')).toBe('7');
    expect(err.message).toContain('Request was throttled. Expected available in 7 seconds.');
    expect(
      sb
        .calls()
        .slice(before2)
        .map((c) => c.status),
    ).toEqual([429, 429, 429, 429, 429, 429]);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('5xx: a POST surfaces at once, a GET is retried', async () => {
    const { version } = await trainedVersion(sb, client, receiver);
    sb.faults.failNextApiCalls({ count: 1, status: 500, method: 'POST', path: '/v1/predictions' });
    const err = await apiError(client.predictions.create({ version, input: { prompt: 'x' } }));
    expect(err.response.status).toBe(500);

    const p = await client.predictions.create({ version, input: { prompt: 'x' } });
    sb.faults.failNextApiCalls({ count: 2, status: 503, method: 'GET', path: `/v1/predictions/${p.id}` });
    const before = sb.calls().length;
    expect((await client.predictions.get(p.id)).id).toBe(p.id);
    expect(
      sb
        .calls()
        .slice(before)
        .map((c) => c.status),
    ).toEqual([503, 503, 200]);
  });

  test('faults over HTTP: POST /sandbox/faults', async () => {
    const { version } = await trainedVersion(sb, client, receiver);
    const res = await fetch(`${sb.url}/sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        failApi: { status: 503, method: 'POST', path: '/v1/predictions' },
        failRuns: { kind: 'prediction', error: 'boom' },
      }),
    });
    expect(res.status).toBe(200);
    expect(
      (await apiError(client.predictions.create({ version, input: { prompt: 'x' } }))).response.status,
    ).toBe(503);
    const p = await client.predictions.create({ version, input: { prompt: 'x' } });
    expect((await sb.settled(p.id)).object).toMatchObject({ status: 'failed', error: 'boom', output: null });
    const snapshot = await (await fetch(`${sb.url}/sandbox/faults`)).json();
    expect(snapshot).toEqual({ api: [], runs: [], dropWebhooks: 0 });
  });

  test('failNextRuns fails one training; the next succeeds', async () => {
    sb.faults.failNextRuns({ kind: 'training' });
    const model = await newModel(client);
    const opts = {
      destination: model as `${string}/${string}`,
      input: { input_images: `${receiver.url}/dataset.zip` },
    };
    const t1 = await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, opts);
    const t2 = await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, opts);
    expect((await sb.settled(t1.id)).object).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('CUDA out of memory'),
    });
    expect((await sb.settled(t2.id)).object.status).toBe('succeeded');
  });

  test('dropped webhooks never arrive; failed deliveries are retried with the same webhook-id', async () => {
    const { version } = await trainedVersion(sb, client, receiver);
    sb.faults.dropWebhooks();
    const dropped = await client.predictions.create({
      version,
      input: { prompt: 'x' },
      webhook: `${receiver.url}/hooks/drop`,
    });
    await sb.settled(dropped.id);
    await sb.webhooksIdle();
    expect(hooksFor(receiver, dropped.id)).toHaveLength(0);
    expect(
      sb
        .deliveries()
        .filter((d) => d.runId === dropped.id)
        .every((d) => d.status === 'dropped'),
    ).toBe(true);
    sb.faults.clear();

    receiver.failNext(2);
    const retried = await client.predictions.create({
      version,
      input: { prompt: 'x' },
      webhook: `${receiver.url}/hooks/retry`,
      webhook_events_filter: ['completed'],
    });
    await sb.settled(retried.id);
    await sb.webhooksIdle();
    const [delivery] = sb.deliveries().filter((d) => d.runId === retried.id);
    expect(delivery!.status).toBe('delivered');
    expect(delivery!.attempts.map((a) => a.httpStatus)).toEqual([500, 500, 204]);
    const [hook] = hooksFor(receiver, retried.id);
    expect(hook!.headers['webhook-id']).toBe(delivery!.webhookId);
    expect(verifySignature(sb.webhookSecret, hook!)).toBe(true);
  });

  test('expireOutputs makes outputs vanish now', async () => {
    const { version } = await trainedVersion(sb, client, receiver);
    const p = await client.predictions.create({ version, input: { prompt: 'x' } });
    const url = ((await sb.settled(p.id)).object.output as string[])[0]!;
    expect((await fetch(url)).status).toBe(200);
    sb.faults.expireOutputs(p.id);
    expect((await fetch(url)).status).toBe(404);
    expect((await client.predictions.get(p.id)).data_removed).toBe(true);
  });
});

describe('Replicate sandbox with slow runs', () => {
  let sb: ReplicateSandbox;
  let client: Replicate;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver(await makeZip());
    sb = await startReplicateSandbox({ trainingMs: 60_000, predictionMs: 60_000 });
    client = new Replicate({ auth: sb.token, baseUrl: sb.baseUrl });
  });

  afterAll(async () => {
    await sb.stop();
    await receiver.close();
  });

  async function version(): Promise<string> {
    const model = await newModel(client);
    const t = await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
      destination: model as `${string}/${string}`,
      input: { input_images: `${receiver.url}/dataset.zip` },
    });
    const done = await sb.complete(t.id);
    return (done.object as Training).output!.version!.split(':')[1]!;
  }

  test('cancel a training and a prediction', async () => {
    const model = await newModel(client);
    const t = await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
      destination: model as `${string}/${string}`,
      input: { input_images: `${receiver.url}/dataset.zip` },
      webhook: `${receiver.url}/hooks/cancel`,
      webhook_events_filter: ['completed'],
    });
    const canceled = await client.trainings.cancel(t.id);
    expect(canceled.status).toBe('canceled');
    expect((await client.trainings.get(t.id)).status).toBe('canceled');
    await sb.webhooksIdle();
    expect(hooksFor(receiver, t.id).map((h) => (JSON.parse(h.body) as Training).status)).toEqual([
      'canceled',
    ]);

    const p = await client.predictions.create({ version: await version(), input: { prompt: 'x' } });
    await waitFor(
      'prediction to be processing',
      async () => (await client.predictions.get(p.id)).status === 'processing',
    );
    expect((await client.predictions.cancel(p.id)).status).toBe('canceled');
    expect((await client.predictions.get(p.id)).output).toBeNull();
  });

  test('Prefer: wait=1 returns the running prediction after a second', async () => {
    const v = await version();
    const started = Date.now();
    const p = await client.predictions.create({ version: v, input: { prompt: 'slow' }, wait: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(['starting', 'processing']).toContain(p.status);
  });
});

describe('Replicate sandbox output TTL', () => {
  test('outputs answer 404 once outputTtlMs has passed', async () => {
    const receiver = await startReceiver(await makeZip());
    const sb = await startReplicateSandbox({ trainingMs: 50, predictionMs: 50, outputTtlMs: 300 });
    try {
      const client = new Replicate({ auth: sb.token, baseUrl: sb.baseUrl });
      const { version } = await trainedVersion(sb, client, receiver);
      const p = await client.predictions.create({ version, input: { prompt: 'ephemeral' } });
      const url = ((await sb.settled(p.id)).object.output as string[])[0]!;
      expect((await fetch(url)).status).toBe(200);
      await waitFor('output to vanish', async () => (await fetch(url)).status === 404, 5000);
      expect((await client.predictions.get(p.id)).data_removed).toBe(true);
    } finally {
      await sb.stop();
      await receiver.close();
    }
  });

  test('stop() leaves no timer behind', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timers();
    const sb = await startReplicateSandbox({ trainingMs: 60_000, predictionMs: 60_000 });
    const client = new Replicate({ auth: sb.token, baseUrl: sb.baseUrl });
    const model = await newModel(client);
    await client.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
      destination: model as `${string}/${string}`,
      input: { input_images: 'http://127.0.0.1:9/unreachable.zip' },
    });
    expect(timers()).toBeGreaterThan(baseline);
    await sb.stop();
    expect(timers()).toBeLessThanOrEqual(baseline);
  });
});
