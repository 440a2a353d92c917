/** SignUrls and DeleteDataset through a real imager gRPC server and the jest stack's bucket. */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { jpeg } from './support/images';
import {
  failure,
  pack,
  startTestImager,
  testBucket,
  type TestBucket,
  type TestImager,
} from './support/imager.harness';

describe('SignUrls', () => {
  let imager: TestImager;
  let publicImager: TestImager;
  let bucket: TestBucket;
  let publicBase: string;
  const prefix = `outputs/${randomUUID()}/${randomUUID()}`;
  const objects: Record<string, Buffer> = {};

  beforeAll(async () => {
    bucket = testBucket();
    publicBase = `${process.env.S3_ENDPOINT}/${process.env.S3_BUCKET}/`;
    imager = await startTestImager({ IMAGE_URL_TTL_S: '900' });
    publicImager = await startTestImager({ PUBLIC_ASSET_BASE_URL: publicBase });
    for (const n of [0, 1, 2]) {
      const key = `${prefix}/${n}.jpg`;
      objects[key] = await jpeg(64, 64, n + 1);
      await bucket.put(key, objects[key], 'image/jpeg');
    }
  });

  afterAll(async () => {
    await imager?.stop();
    await publicImager?.stop();
    bucket?.close();
  });

  it('signs keys in order with presigned GETs that download the objects', async () => {
    const keys = [`${prefix}/2.jpg`, `${prefix}/0.jpg`, `${prefix}/1.jpg`];
    const asked = Date.now();
    const { urls } = await imager.client.signUrls({ keys });
    expect(urls).toHaveLength(3);
    // Signed as of the reuse window's start (a quarter of the TTL here) for the TTL plus that
    // window: valid for at least IMAGE_URL_TTL_S from the request, and the same URL when asked again.
    expect((await imager.client.signUrls({ keys })).urls).toEqual(urls);
    for (const [i, url] of urls.entries()) {
      const q = new URL(url).searchParams;
      expect(q.get('X-Amz-Expires')).toBe(String(900 + 225));
      const date = q
        .get('X-Amz-Date')!
        .replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z');
      expect(Date.parse(date) + 1125_000).toBeGreaterThanOrEqual(asked + 900_000);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      expect(Buffer.from(await res.arrayBuffer()).equals(objects[keys[i]!]!)).toBe(true);
    }
    expect((await imager.client.signUrls({ keys: [] })).urls).toEqual([]);
  });

  it('gives PUBLIC_ASSET_BASE_URL + key for images, and still presigns datasets', async () => {
    const datasetKey = `datasets/${randomUUID()}/${randomUUID()}.zip`;
    const keys = [`${prefix}/0.jpg`, datasetKey, `${prefix}/1.jpg`];
    const { urls } = await publicImager.client.signUrls({ keys });
    expect(urls[0]).toBe(`${publicBase}${prefix}/0.jpg`);
    expect(urls[2]).toBe(`${publicBase}${prefix}/1.jpg`);
    expect(urls[1]).toContain('X-Amz-Signature=');
    expect(new URL(urls[1]!).searchParams.get('X-Amz-Expires')).toBe(
      String(publicImager.config.DATASET_URL_TTL_S),
    );
    // The local bucket serves anonymous reads, as a public bucket or CDN would.
    const res = await fetch(urls[0]!);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(objects[`${prefix}/0.jpg`]!)).toBe(true);
  });

  it.each([
    ['a key outside outputs/ and datasets/', 'private/secret.txt'],
    ['a path that climbs out', 'outputs/../private/secret.txt'],
    ['a bare prefix', 'outputs/'],
    ['an absolute path', '/outputs/a.png'],
  ])('refuses %s with INVALID_ARGUMENT', async (_what, key) => {
    const err = await failure(imager.client.signUrls({ keys: [`${prefix}/0.jpg`, key] }));
    expect(err.grpcCode).toBe(status.INVALID_ARGUMENT);
  });
});

describe('DeleteDataset', () => {
  let imager: TestImager;
  let bucket: TestBucket;

  beforeAll(async () => {
    imager = await startTestImager();
    bucket = testBucket();
  });

  afterAll(async () => {
    await imager?.stop();
    bucket?.close();
  });

  it('deletes a packed dataset and is idempotent', async () => {
    const accountId = randomUUID();
    const photos = await Promise.all(
      [1, 2, 3, 4, 5].map(async (seed) => ({
        name: `p${seed}.jpg`,
        bytes: await jpeg(600, 600, 120 + seed),
      })),
    );
    const { datasetKey, datasetUrl } = await pack(
      imager.client,
      { accountId, datasetId: randomUUID() },
      photos,
    );
    expect(await bucket.head(datasetKey)).not.toBeNull();

    expect(await imager.client.deleteDataset({ datasetKey })).toEqual({ deleted: true });
    expect(await bucket.head(datasetKey)).toBeNull();
    expect((await fetch(datasetUrl)).status).toBe(404);
    expect(await imager.client.deleteDataset({ datasetKey })).toEqual({ deleted: false });
  });

  it.each([
    `outputs/${randomUUID()}/${randomUUID()}/0.png`,
    `datasets/${randomUUID()}/../${randomUUID()}.zip`,
    `datasets/${randomUUID()}.zip`,
    '',
  ])('refuses %j with INVALID_ARGUMENT', async (datasetKey) => {
    expect((await failure(imager.client.deleteDataset({ datasetKey }))).grpcCode).toBe(
      status.INVALID_ARGUMENT,
    );
  });
});
