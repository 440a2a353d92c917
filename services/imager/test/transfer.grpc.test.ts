/**
 * TransferOutputs: real prediction outputs of the Replicate sandbox (a model trained on a dataset
 * this imager packed), fetched through a recording forwarder that can hold, fail or rewrite
 * individual downloads, into the jest stack's bucket.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import Replicate from 'replicate';
import { startReplicateSandbox, type ReplicateSandbox } from '@atelier/infra/sandbox/replicate';
import { waitFor } from '@atelier/infra/testing/wait';
import { jpeg } from './support/images';
import { startHttpRecorder, type HttpRecorder, type Interceptor } from './support/http.recorder';
import {
  failure,
  pack,
  startTestImager,
  testBucket,
  type TestBucket,
  type TestImager,
} from './support/imager.harness';

const TRAINER = {
  owner: 'ostris',
  name: 'flux-dev-lora-trainer',
  version: 'e440909d3512c31646ee2e0c7d6f6f4923224863a6a10c494606e79fb5844497',
};

const newPrefix = () => `outputs/${randomUUID()}/${randomUUID()}/${randomUUID()}`;
const FILES = /^\/files\//;

describe('TransferOutputs', () => {
  let sandbox: ReplicateSandbox;
  let replicate: Replicate;
  let recorder: HttpRecorder;
  let imager: TestImager;
  let bucket: TestBucket;
  let version: string;

  /** A finished prediction's output URLs, pointed at the recorder, and the run id. */
  async function predict(
    numOutputs: number,
    input: Record<string, unknown> = {},
  ): Promise<{ id: string; urls: string[] }> {
    const created = await replicate.predictions.create({
      version,
      input: {
        prompt: `a photo of TOK #${randomUUID()}`,
        num_outputs: numOutputs,
        width: 768,
        height: 512,
        ...input,
      },
    });
    const done = await sandbox.settled(created.id);
    expect(done.object.status).toBe('succeeded');
    const urls = (done.object.output as string[]).map((url) => url.replace(sandbox.url, recorder.url));
    return { id: created.id, urls };
  }

  /** The bytes the sandbox serves for one output, fetched directly. */
  async function sourceBytes(url: string): Promise<Buffer> {
    const res = await fetch(url.replace(recorder.url, sandbox.url));
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  /** Holds every file download until `count` of them are open at once (or 10 s have passed). */
  function barrier(count: number): Interceptor {
    const waiting: Array<() => void> = [];
    return async (req) => {
      if (!FILES.test(req.url ?? '')) return false;
      await new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (waiting.length >= count) waiting.splice(0).forEach((release) => release());
        else setTimeout(resolve, 10_000).unref();
      });
      return false;
    };
  }

  beforeAll(async () => {
    sandbox = await startReplicateSandbox({ trainingMs: 100, predictionMs: 50 });
    replicate = new Replicate({ auth: sandbox.token, baseUrl: sandbox.baseUrl });
    recorder = await startHttpRecorder(sandbox.url);
    imager = await startTestImager({ TRANSFER_RETRY_BASE_MS: '20' });
    bucket = testBucket();

    // A trained version to predict with, trained on a dataset packed by this imager: the sandbox
    // trainer downloads the zip through its presigned URL and refuses anything but a zip of images.
    const photos = await Promise.all(
      [1, 2, 3, 4, 5].map(async (seed) => ({ name: `p${seed}.jpg`, bytes: await jpeg(600, 600, 80 + seed) })),
    );
    const dataset = await pack(imager.client, { accountId: randomUUID(), datasetId: randomUUID() }, photos);
    expect(dataset.problems).toEqual([]);
    const model = `transfer-${randomUUID().slice(0, 8)}`;
    await replicate.models.create('atelier', model, { visibility: 'private', hardware: 'gpu-l40s' });
    const training = await replicate.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
      destination: `atelier/${model}`,
      input: { input_images: dataset.datasetUrl },
    });
    const trained = await sandbox.settled(training.id);
    expect(trained.object.status).toBe('succeeded');
    version = (trained.object.output as { version: string }).version.split(':')[1]!;
  });

  afterEach(() => {
    recorder.intercept(undefined);
    recorder.chunked(false);
  });

  afterAll(async () => {
    await imager?.stop();
    await recorder?.close();
    await sandbox?.stop();
    bucket?.close();
  });

  it('copies 4 outputs concurrently into the bucket, in input order, with their size and type', async () => {
    const { urls } = await predict(4);
    const prefix = newPrefix();
    const sources = await Promise.all(urls.map(sourceBytes));
    const outputBytesBefore = await imager.transferBytes('output');
    const first = recorder.requests.length;
    recorder.intercept(barrier(4));

    const { images } = await imager.client.transferOutputs({ keyPrefix: prefix, urls });

    expect(images).toEqual(
      sources.map((bytes, n) => ({
        key: `${prefix}/${n}.png`,
        width: 768,
        height: 512,
        contentType: 'image/png',
        bytes: bytes.length,
      })),
    );
    for (const [n, image] of images.entries()) {
      expect(await bucket.head(image.key)).toEqual({ bytes: sources[n]!.length, contentType: 'image/png' });
      expect((await bucket.get(image.key)).equals(sources[n]!)).toBe(true);
    }
    // All four downloads were open at once: every one started before the first one ended.
    const downloads = recorder.requests.slice(first).filter((r) => FILES.test(r.url));
    expect(downloads).toHaveLength(4);
    expect(Math.max(...downloads.map((r) => r.started))).toBeLessThan(
      Math.min(...downloads.map((r) => r.ended!)),
    );
    expect((await imager.transferBytes('output')) - outputBytesBefore).toBe(
      sources.reduce((sum, b) => sum + b.length, 0),
    );

    // Idempotent: the caller retries a whole transfer and gets the same keys.
    const again = await imager.client.transferOutputs({ keyPrefix: prefix, urls });
    expect(again.images).toEqual(images);
    expect(await bucket.list(`${prefix}/`)).toEqual(images.map((i) => i.key).sort());
  });

  it('keeps the type of each file: JPEG and WebP outputs get their own extension and size', async () => {
    const jpg = await predict(1, { output_format: 'jpg', width: 640, height: 832 });
    const webp = await predict(1, { output_format: 'webp', width: 1024, height: 576 });
    const prefix = newPrefix();

    const { images } = await imager.client.transferOutputs({
      keyPrefix: prefix,
      urls: [...jpg.urls, ...webp.urls],
    });

    expect(
      images.map(({ key, width, height, contentType }) => ({ key, width, height, contentType })),
    ).toEqual([
      { key: `${prefix}/0.jpg`, width: 640, height: 832, contentType: 'image/jpeg' },
      { key: `${prefix}/1.webp`, width: 1024, height: 576, contentType: 'image/webp' },
    ]);
  });

  it('retries a download that answered 503 and succeeds', async () => {
    const { urls } = await predict(4);
    const prefix = newPrefix();
    const flaky = new URL(urls[2]!).pathname;
    let failed = 0;
    recorder.intercept((req, res) => {
      if (req.url !== flaky || failed > 0) return false;
      failed += 1;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
      return true;
    });

    const { images } = await imager.client.transferOutputs({ keyPrefix: prefix, urls });

    expect(images).toHaveLength(4);
    expect(recorder.seen(new RegExp(`^${flaky}$`)).map((r) => r.status)).toEqual([503, 200]);
    expect(await bucket.list(`${prefix}/`)).toHaveLength(4);
  });

  it('retries a download that breaks off half-way, and stores the whole file', async () => {
    const { urls } = await predict(2);
    const prefix = newPrefix();
    const source = await sourceBytes(urls[1]!);
    const path = new URL(urls[1]!).pathname;
    let cut = 0;
    recorder.intercept((req, res) => {
      if (req.url !== path || cut > 0) return false;
      cut += 1;
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': source.length });
      res.write(source.subarray(0, Math.floor(source.length / 2)), () => setImmediate(() => res.destroy()));
      return true;
    });

    const { images } = await imager.client.transferOutputs({ keyPrefix: prefix, urls });

    expect(cut).toBe(1);
    expect(recorder.seen(new RegExp(`^${path}$`))).toHaveLength(2);
    expect(images[1]).toMatchObject({ key: `${prefix}/1.png`, bytes: source.length });
    expect((await bucket.get(`${prefix}/1.png`)).equals(source)).toBe(true);
  });

  it('fails with NOT_FOUND when an output has vanished, and removes the outputs it had already stored', async () => {
    const kept = await predict(3);
    const gone = await predict(1);
    sandbox.faults.expireOutputs(gone.id);
    const prefix = newPrefix();
    const vanished = new URL(gone.urls[0]!).pathname;
    let storedMeanwhile: string[] = [];
    // The vanished file answers only once the three others are in the bucket, so there is
    // something to clean up.
    recorder.intercept(async (req) => {
      if (req.url === vanished) {
        storedMeanwhile = await waitFor(
          async () => {
            const keys = await bucket.list(`${prefix}/`);
            return keys.length === 3 && keys;
          },
          { what: 'the other outputs to be stored' },
        );
      }
      return false;
    });

    const err = await failure(
      imager.client.transferOutputs({ keyPrefix: prefix, urls: [...kept.urls, ...gone.urls] }),
    );

    expect([err.grpcCode, err.code]).toEqual([status.NOT_FOUND, 'not_found']);
    expect(err.message).toBe('output 4 is gone at its source (HTTP 404)');
    expect(storedMeanwhile).toEqual([`${prefix}/0.png`, `${prefix}/1.png`, `${prefix}/2.png`]);
    expect(await bucket.list(`${prefix}/`)).toEqual([]);
    expect(recorder.seen(new RegExp(`^${vanished}$`))).toHaveLength(1); // gone is gone: no retry
  });

  it('fails with UNAVAILABLE when a source keeps failing, and leaves nothing behind', async () => {
    const { urls } = await predict(2);
    const prefix = newPrefix();
    const broken = new URL(urls[1]!).pathname;
    recorder.intercept((req, res) => {
      if (req.url !== broken) return false;
      res.writeHead(502).end();
      return true;
    });

    const err = await failure(imager.client.transferOutputs({ keyPrefix: prefix, urls }));

    expect([err.grpcCode, err.message]).toEqual([
      status.UNAVAILABLE,
      'output 2 could not be downloaded after 3 attempts: HTTP 502',
    ]);
    expect(recorder.seen(new RegExp(`^${broken}$`))).toHaveLength(3);
    expect(await bucket.list(`${prefix}/`)).toEqual([]);
  });

  it.each([
    ['an HTML page', 'text/html', Buffer.from('<html><body>Not an image</body></html>')],
    ['text sent as a PNG', 'image/png', Buffer.from('definitely not a PNG file, just some text')],
  ])('refuses %s with INVALID_ARGUMENT', async (_what, contentType, body) => {
    const { urls } = await predict(2);
    const prefix = newPrefix();
    const odd = new URL(urls[0]!).pathname;
    recorder.intercept((req, res) => {
      if (req.url !== odd) return false;
      res.writeHead(200, { 'content-type': contentType }).end(body);
      return true;
    });

    const err = await failure(imager.client.transferOutputs({ keyPrefix: prefix, urls }));

    expect([err.grpcCode, err.code]).toEqual([status.INVALID_ARGUMENT, 'unsupported_media_type']);
    expect(await bucket.list(`${prefix}/`)).toEqual([]);
  });

  it('refuses a PNG that claims to be a JPEG', async () => {
    const { urls } = await predict(1);
    const png = await sourceBytes(urls[0]!);
    recorder.intercept((req, res) => {
      if (!FILES.test(req.url ?? '')) return false;
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(png);
      return true;
    });
    const err = await failure(imager.client.transferOutputs({ keyPrefix: newPrefix(), urls }));
    expect(err.message).toBe('output 1 is sent as image/jpeg but is a png');
  });

  it('refuses bad arguments', async () => {
    const bad = async (keyPrefix: string, urls: string[]) =>
      (await failure(imager.client.transferOutputs({ keyPrefix, urls }))).grpcCode;
    expect(await bad('datasets/x/y', ['http://127.0.0.1/x.png'])).toBe(status.INVALID_ARGUMENT);
    expect(await bad('outputs/../datasets', ['http://127.0.0.1/x.png'])).toBe(status.INVALID_ARGUMENT);
    expect(await bad('outputs/a/', ['http://127.0.0.1/x.png'])).toBe(status.INVALID_ARGUMENT);
    expect(await bad(newPrefix(), ['file:///etc/passwd'])).toBe(status.INVALID_ARGUMENT);
    expect(await bad(newPrefix(), ['not a url'])).toBe(status.INVALID_ARGUMENT);
    expect((await imager.client.transferOutputs({ keyPrefix: newPrefix(), urls: [] })).images).toEqual([]);
  });
});

describe('TransferOutputs size bound', () => {
  let sandbox: ReplicateSandbox;
  let recorder: HttpRecorder;
  let imager: TestImager;
  let bucket: TestBucket;
  let url: string;
  let size: number;

  beforeAll(async () => {
    sandbox = await startReplicateSandbox({ trainingMs: 100, predictionMs: 50 });
    recorder = await startHttpRecorder(sandbox.url);
    bucket = testBucket();
    // Any file the sandbox serves will do: a training's weights are not an image, so use a
    // prediction on a version pushed by a training of a real dataset.
    const replicate = new Replicate({ auth: sandbox.token, baseUrl: sandbox.baseUrl });
    const packer = await startTestImager();
    const photos = await Promise.all(
      [1, 2, 3, 4, 5].map(async (seed) => ({ name: `p${seed}.jpg`, bytes: await jpeg(600, 600, 90 + seed) })),
    );
    const dataset = await pack(packer.client, { accountId: randomUUID(), datasetId: randomUUID() }, photos);
    await packer.stop();
    await replicate.models.create('atelier', 'bounded', { visibility: 'private', hardware: 'gpu-l40s' });
    const training = await replicate.trainings.create(TRAINER.owner, TRAINER.name, TRAINER.version, {
      destination: 'atelier/bounded',
      input: { input_images: dataset.datasetUrl },
    });
    const version = ((await sandbox.settled(training.id)).object.output as { version: string }).version.split(
      ':',
    )[1]!;
    const prediction = await replicate.predictions.create({
      version,
      input: { prompt: 'noise', width: 1024, height: 1024 },
    });
    url = ((await sandbox.settled(prediction.id)).object.output as string[])[0]!.replace(
      sandbox.url,
      recorder.url,
    );
    size = (await (await fetch(url)).arrayBuffer()).byteLength;
    // Big enough for the header, too small for the file.
    imager = await startTestImager({ TRANSFER_MAX_BYTES: String(Math.floor(size / 2)) });
  });

  afterAll(async () => {
    await imager?.stop();
    await recorder?.close();
    await sandbox?.stop();
    bucket?.close();
  });

  it.each([
    ['declared by Content-Length', false],
    ['found while streaming (chunked, no length)', true],
  ])('refuses an output over TRANSFER_MAX_BYTES %s and stores nothing', async (_how, chunked) => {
    recorder.chunked(chunked);
    const prefix = newPrefix();
    const err = await failure(imager.client.transferOutputs({ keyPrefix: prefix, urls: [url] }));
    expect([err.grpcCode, err.code]).toEqual([status.RESOURCE_EXHAUSTED, 'payload_too_large']);
    expect(await bucket.list(`${prefix}/`)).toEqual([]);
  });
});
