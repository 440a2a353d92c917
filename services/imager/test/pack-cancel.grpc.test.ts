/**
 * A caller that goes away after sending every photo. grpc-js ends a client stream *normally* when
 * its caller cancels and only then (a few ticks later) reports the cancellation, so the packer
 * must not take the end of the stream as a complete upload. These tests drive the packer with that
 * exact ordering, deterministically, against the real bucket behind a recording forwarder.
 */
import { randomUUID } from 'node:crypto';
import { Errors, createLogger, createMetrics } from '@atelier/kit';
import { BucketClient } from '../src/clients/bucket.client';
import { createStoredZip } from '../src/clients/zip.client';
import { DatasetPacker, UrlSigner, type PackPart } from '../src/domain';
import { jpeg } from './support/images';
import { photoDeps } from './support/photos';
import { startHttpRecorder, type HttpRecorder } from './support/http.recorder';
import { testBucket, type TestBucket } from './support/imager.harness';

describe('DatasetPacker when the caller cancels after sending everything', () => {
  let recorder: HttpRecorder;
  let bucket: TestBucket;
  let client: BucketClient;
  let packer: DatasetPacker;
  let photos: Buffer[];

  beforeAll(async () => {
    recorder = await startHttpRecorder(process.env.S3_ENDPOINT!);
    bucket = testBucket();
    client = new BucketClient({
      endpoint: recorder.url,
      region: process.env.S3_REGION ?? 'us-east-1',
      bucket: process.env.S3_BUCKET!,
      accessKeyId: process.env.S3_ACCESS_KEY_ID!,
      secretAccessKey: process.env.S3_SECRET_ACCESS_KEY!,
      maxAttempts: 1,
      connectTimeoutMs: 2000,
      requestTimeoutMs: 10_000,
    });
    packer = new DatasetPacker({
      bucket: client,
      urls: new UrlSigner(client, { datasetTtlS: 3600, imageTtlS: 600, maxKeys: 10 }),
      logger: createLogger('imager', 'silent'),
      metrics: createMetrics('imager'),
      photos: photoDeps,
      createZip: () => createStoredZip(),
      concurrency: 2,
      limits: {
        minSide: 512,
        maxSide: 2048,
        maxPixels: 40_000_000,
        maxFileBytes: 1 << 20,
        maxTotalBytes: 10 << 20,
        defaultMinCount: 1,
        defaultMaxCount: 10,
        maxCountCeiling: 10,
      },
    });
    photos = await Promise.all([1, 2, 3].map((seed) => jpeg(600, 600, 100 + seed)));
  });

  afterEach(() => recorder.intercept(undefined));

  afterAll(async () => {
    client?.close();
    await recorder?.close();
    bucket?.close();
  });

  function* messages(accountId: string, datasetId: string): Generator<PackPart> {
    yield { header: { accountId, datasetId, minImages: 1, maxImages: 10 } };
    for (const [index, bytes] of photos.entries()) {
      yield { fileStart: { index, filename: `p${index}.jpg`, contentType: 'image/jpeg' } };
      yield { chunk: bytes };
    }
    yield { end: { files: photos.length } };
  }

  /** Every message, a normal end, and the cancellation only afterwards — as grpc-js does it. */
  async function* thenCancelled(source: Iterable<PackPart>, cancel: () => void): AsyncGenerator<PackPart> {
    yield* source;
    setImmediate(cancel);
  }

  const cancelled = () => Errors.timeout('caller');

  it('does not commit the zip when the cancellation follows the end of the stream', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const controller = new AbortController();

    await expect(
      packer.pack(
        thenCancelled(messages(accountId, datasetId), () => controller.abort(cancelled())),
        controller.signal,
      ),
    ).rejects.toMatchObject({
      code: 'timeout',
    });

    expect(recorder.seen(new RegExp(`${datasetId}\\.zip`))).toEqual([]);
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });

  it('deletes the object when the cancellation arrives while the zip is being written', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const controller = new AbortController();
    // The cancellation lands while the object's PUT is on its way: the upload still succeeds.
    recorder.intercept((req) => {
      if (req.method === 'PUT' && req.url?.includes(datasetId)) controller.abort(cancelled());
      return false;
    });

    await expect(
      packer.pack(
        thenCancelled(messages(accountId, datasetId), () => undefined),
        controller.signal,
      ),
    ).rejects.toMatchObject({
      code: 'timeout',
    });

    const requests = recorder.seen(new RegExp(`${datasetId}\\.zip`)).map((r) => [r.method, r.status]);
    expect(requests).toEqual([
      ['PUT', 200],
      ['DELETE', 204],
    ]);
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });

  it('stores nothing when the stream stops without its end message (a caller that went away)', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const withoutEnd = [...messages(accountId, datasetId)].filter((m) => !m.end);
    await expect(
      packer.pack(
        thenCancelled(withoutEnd, () => undefined),
        new AbortController().signal,
      ),
    ).rejects.toMatchObject({
      code: 'invalid_argument',
    });
    expect(
      recorder.seen(new RegExp(`${datasetId}\\.zip`)).filter((r) => r.method === 'PUT' && r.status === 200),
    ).toEqual([]);
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });

  it('packs the same photos when nobody cancels', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const result = await packer.pack(
      thenCancelled(messages(accountId, datasetId), () => undefined),
      new AbortController().signal,
    );
    expect(result).toMatchObject({ ok: true, key: `datasets/${accountId}/${datasetId}.zip`, images: 3 });
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([`datasets/${accountId}/${datasetId}.zip`]);
  });
});
