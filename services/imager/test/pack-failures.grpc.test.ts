/**
 * PackTrainingImages when things go wrong half-way: the bucket vanishes, the client gives up. The
 * imager reaches the bucket through a TCP proxy (to make it vanish) in front of a recording HTTP
 * forwarder (to see which S3 requests were made), in front of the jest stack's bucket.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import JSZip from 'jszip';
import { createHealthChecker } from '@atelier/kit';
import { startTcpProxy, viaProxy, type TcpProxy } from '@atelier/infra/testing/proxy';
import { waitFor } from '@atelier/infra/testing/wait';
import { IMAGER_SERVICE_NAME } from '../src';
import { jpeg, noisy } from './support/images';
import { startHttpRecorder, type HttpRecorder } from './support/http.recorder';
import {
  failure,
  pack,
  sendFile,
  startTestImager,
  testBucket,
  type PackStream,
  type TestBucket,
  type TestImager,
  type UploadFile,
} from './support/imager.harness';

/** Noise does not compress: each is ~1.6 MB, so a few make a zip of several 5 MiB parts. */
async function bigPhotos(count: number): Promise<UploadFile[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => ({
      name: `big-${i}.jpg`,
      bytes: await noisy(1500, 1500).jpeg({ quality: 92 }).toBuffer(),
    })),
  );
}

const UPLOAD_PART = /[?&]partNumber=\d+/;
const COMPLETE = /[?&]uploadId=/;

describe('PackTrainingImages failures', () => {
  let recorder: HttpRecorder;
  let proxy: TcpProxy;
  let imager: TestImager;
  let bucket: TestBucket;
  let health: ReturnType<typeof createHealthChecker>;
  let big: UploadFile[];

  beforeAll(async () => {
    big = await bigPhotos(8);
    recorder = await startHttpRecorder(process.env.S3_ENDPOINT!);
    proxy = await startTcpProxy({ host: '127.0.0.1', port: recorder.port });
    imager = await startTestImager({
      S3_ENDPOINT: viaProxy(recorder.url, proxy).replace(/\/$/, ''),
      S3_MAX_ATTEMPTS: '2',
    });
    health = createHealthChecker(imager.service.address);
    bucket = testBucket();
  });

  afterEach(() => proxy.up());

  afterAll(async () => {
    health?.close();
    await imager?.stop();
    await proxy?.close();
    await recorder?.close();
    bucket?.close();
  });

  async function startPack(
    header: { accountId: string; datasetId: string },
    files: UploadFile[],
  ): Promise<PackStream> {
    const stream = imager.client.packTrainingImages();
    await stream.write({ header: { ...header, minImages: 1, maxImages: 30 } });
    for (const [index, file] of files.entries()) await sendFile(stream, index, file);
    return stream;
  }

  it('streams a zip of several parts into the bucket as a multipart upload', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const files = big;
    const partsBefore = recorder.seen(UPLOAD_PART).length;

    const res = await pack(imager.client, { accountId, datasetId, minImages: 1, maxImages: 30 }, files);

    expect(res).toMatchObject({ problems: [], images: 8 });
    expect(res.zipBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(recorder.seen(UPLOAD_PART).length - partsBefore).toBe(Math.ceil(res.zipBytes / (5 * 1024 * 1024)));
    const stored = await bucket.get(res.datasetKey);
    expect(stored.length).toBe(res.zipBytes);
    const zip = await JSZip.loadAsync(stored, { checkCRC32: true });
    expect(Object.keys(zip.files)).toHaveLength(8);
  });

  it('answers UNAVAILABLE and leaves no object when the bucket goes down during the multipart upload', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const key = `datasets/${accountId}/${datasetId}.zip`;
    const partsBefore = recorder.seen(UPLOAD_PART).length;
    const completesBefore = recorder.seen(COMPLETE).filter((r) => r.method === 'POST').length;
    const files = big;

    // Everything is sent but the stream is not closed, so the upload cannot complete on its own.
    const stream = await startPack({ accountId, datasetId }, files.slice(0, 6));
    await waitFor(() => recorder.seen(UPLOAD_PART).length > partsBefore, {
      timeoutMs: 30_000,
      what: 'the first part to be uploaded',
    });
    proxy.down();
    await waitFor(async () => (await health.check(IMAGER_SERVICE_NAME)) === 'NOT_SERVING', {
      timeoutMs: 30_000,
      what: 'imager to report NOT_SERVING',
    });
    await sendFile(stream, 6, files[6]!).catch(() => undefined);
    await stream.write({ end: { files: 7 } }).catch(() => undefined);

    const err = await failure(stream.end());
    expect([err.grpcCode, err.code]).toEqual([status.UNAVAILABLE, 'unavailable']);
    expect(err.message).toBe('bucket is unavailable');

    proxy.up();
    await waitFor(async () => (await health.check(IMAGER_SERVICE_NAME)) === 'SERVING', {
      timeoutMs: 30_000,
      what: 'imager to be SERVING again',
    });
    expect(recorder.seen(COMPLETE).filter((r) => r.method === 'POST')).toHaveLength(completesBefore);
    expect(await bucket.head(key)).toBeNull();
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });

  it('answers UNAVAILABLE and leaves no object when the bucket is down for the final PUT', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const photos = await Promise.all(
      [1, 2, 3, 4, 5].map(async (seed) => ({ name: `s${seed}.jpg`, bytes: await jpeg(600, 600, 60 + seed) })),
    );

    const stream = await startPack({ accountId, datasetId }, photos);
    proxy.down();
    await stream.write({ end: { files: photos.length } }).catch(() => undefined);
    const err = await failure(stream.end());
    expect(err.grpcCode).toBe(status.UNAVAILABLE);

    proxy.up();
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });

  it('leaves no object when the client cancels while the zip is being uploaded', async () => {
    const accountId = randomUUID();
    const datasetId = randomUUID();
    const partsBefore = recorder.seen(UPLOAD_PART).length;
    const completesBefore = recorder.seen(COMPLETE).filter((r) => r.method === 'POST').length;
    const handledBefore = await imager.handled('PackTrainingImages');
    const files = big.slice(0, 7);

    const stream = await startPack({ accountId, datasetId }, files);
    await waitFor(() => recorder.seen(UPLOAD_PART).length > partsBefore, {
      timeoutMs: 30_000,
      what: 'the first part to be uploaded',
    });
    stream.cancel();
    const err = await failure(stream.end());
    expect(err.grpcCode).toBe(status.CANCELLED);

    // The server has finished with the call (and so with its upload) once it counted it.
    await waitFor(async () => (await imager.handled('PackTrainingImages')) > handledBefore, {
      timeoutMs: 30_000,
      what: 'the server to finish the call',
    });
    expect(recorder.seen(COMPLETE).filter((r) => r.method === 'POST')).toHaveLength(completesBefore);
    expect(await bucket.head(`datasets/${accountId}/${datasetId}.zip`)).toBeNull();
    expect(await bucket.list(`datasets/${accountId}/`)).toEqual([]);
  });
});
