/** BucketClient against the jest stack's bucket, and against a bucket that is gone or hangs. */
import { randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { AppError } from '@atelier/kit';
import { startTcpProxy, type TcpProxy } from '@atelier/infra/testing/proxy';
import { BucketClient, bucketError, type BucketOptions } from '../src/clients/bucket.client';
import { stackS3Address, testBucket, type TestBucket } from './support/imager.harness';

function options(overrides: Partial<BucketOptions> = {}): BucketOptions {
  return {
    endpoint: process.env.S3_ENDPOINT!,
    region: process.env.S3_REGION ?? 'us-east-1',
    bucket: process.env.S3_BUCKET!,
    accessKeyId: process.env.S3_ACCESS_KEY_ID!,
    secretAccessKey: process.env.S3_SECRET_ACCESS_KEY!,
    maxAttempts: 2,
    connectTimeoutMs: 1000,
    requestTimeoutMs: 5000,
    ...overrides,
  };
}

/** Yields `data` in 64 KiB pieces, then fails if `failWith` is given instead of ending. */
function pieces(data: Buffer, failWith?: Error): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < data.length; at += 64 * 1024) yield data.subarray(at, at + 64 * 1024);
      if (failWith) throw failWith;
    })(),
  );
}

describe('BucketClient', () => {
  let client: BucketClient;
  let bucket: TestBucket;
  const prefix = `outputs/bucket-test/${randomUUID()}`;

  beforeAll(() => {
    client = new BucketClient(options({ publicBaseUrl: 'https://cdn.example.com/assets' }));
    bucket = testBucket();
  });

  afterAll(() => {
    client?.close();
    bucket?.close();
  });

  it.each([
    ['one PUT', 300 * 1024],
    ['a multipart upload', 11 * 1024 * 1024 + 123],
  ])('streams a body into an object byte for byte (%s), with its content type', async (_how, size) => {
    const key = `${prefix}/${size}.bin`;
    const data = randomBytes(size);
    await client.upload(key, pieces(data), { contentType: 'image/png' });
    // No aws-chunked framing inside the object: exactly the bytes sent.
    expect((await bucket.get(key)).equals(data)).toBe(true);
    expect(await client.head(key)).toEqual({ bytes: size, contentType: 'image/png' });
  });

  it.each([
    ['before the first part', 200 * 1024],
    ['after parts were uploaded', 12 * 1024 * 1024],
  ])('creates no object when the body fails %s', async (_when, size) => {
    const key = `${prefix}/failed-${size}.bin`;
    const reason = new Error('the producer gave up');
    await expect(
      client.upload(key, pieces(randomBytes(size), reason), { contentType: 'application/zip' }),
    ).rejects.toThrow();
    expect(await bucket.head(key)).toBeNull();
  });

  it('presigns GETs for a given time and builds public URLs from the base', async () => {
    const key = `${prefix}/signed.bin`;
    await bucket.put(key, Buffer.from('signed'), 'text/plain');
    const before = Date.now();
    const { url, expiresAt } = await client.presignGet(key, 120);
    expect(expiresAt.getTime()).toBeGreaterThanOrEqual(before + 120_000);
    expect(expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 120_000);
    expect(await (await fetch(url)).text()).toBe('signed');
    expect(client.publicUrl('outputs/a b/0.png')).toBe('https://cdn.example.com/assets/outputs/a%20b/0.png');
    expect(new BucketClient(options()).publicUrl('outputs/x.png')).toBeUndefined();
  });

  it('addresses AWS S3 by virtual host without an endpoint, and an S3-compatible endpoint by path', async () => {
    const aws = new BucketClient(
      options({ endpoint: undefined, region: 'eu-west-3', bucket: 'atelier-photos' }),
    );
    const compatible = new BucketClient(options({ endpoint: 'https://files.example.com' }));
    const chosen = new BucketClient(
      options({
        endpoint: 'https://acc.r2.cloudflarestorage.com',
        bucket: 'bucket-one',
        forcePathStyle: false,
      }),
    );
    try {
      const host = async (c: BucketClient) => new URL((await c.presignGet('datasets/x.zip', 60)).url);
      expect((await host(aws)).host).toBe('atelier-photos.s3.eu-west-3.amazonaws.com');
      expect((await host(aws)).pathname).toBe('/datasets/x.zip');
      expect((await host(compatible)).host).toBe('files.example.com');
      expect((await host(compatible)).pathname).toBe(`/${process.env.S3_BUCKET}/datasets/x.zip`);
      expect((await host(chosen)).host).toBe('bucket-one.acc.r2.cloudflarestorage.com');
    } finally {
      for (const c of [aws, compatible, chosen]) c.close();
    }
  });
});

describe('BucketClient when the bucket is unreachable', () => {
  let proxy: TcpProxy;
  let client: BucketClient;
  let silent: net.Server;
  let hanging: BucketClient;
  const held: net.Socket[] = [];

  beforeAll(async () => {
    proxy = await startTcpProxy(stackS3Address());
    client = new BucketClient(options({ endpoint: `http://${proxy.address}` }));
    // Accepts connections and never answers.
    silent = net.createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    hanging = new BucketClient(
      options({
        endpoint: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
        maxAttempts: 1,
        requestTimeoutMs: 300,
      }),
    );
  });

  afterAll(async () => {
    client?.close();
    hanging?.close();
    held.forEach((socket) => socket.destroy());
    await new Promise((resolve) => silent.close(resolve));
    await proxy?.close();
  });

  it('answers unavailable while down, and works again when it is back', async () => {
    await client.ping();
    proxy.down();
    await expect(client.ping()).rejects.toMatchObject({
      code: 'unavailable',
      message: 'bucket is unavailable',
    });
    await expect(client.head('outputs/x.png')).rejects.toMatchObject({ code: 'unavailable' });
    await expect(
      client.upload(`outputs/down/${randomUUID()}.bin`, pieces(randomBytes(1000)), {
        contentType: 'image/png',
      }),
    ).rejects.toMatchObject({
      code: 'unavailable',
    });
    proxy.up();
    await client.ping();
  });

  it('answers timeout when the bucket does not answer', async () => {
    await expect(hanging.ping()).rejects.toMatchObject({
      code: 'timeout',
      message: 'bucket did not answer in time',
    });
  });
});

describe('bucketError', () => {
  const s3Error = (status: number) =>
    new S3ServiceException({
      name: 'Boom',
      $fault: status >= 500 ? 'server' : 'client',
      $metadata: { httpStatusCode: status },
    });

  it('maps 5xx and connection failures to unavailable, time-outs to timeout, the rest stays internal', () => {
    expect(bucketError(s3Error(503))).toMatchObject({ code: 'unavailable' });
    expect(
      bucketError(Object.assign(new Error('read ECONNRESET'), { name: 'TimeoutError', code: 'ECONNRESET' })),
    ).toMatchObject({ code: 'unavailable' });
    expect(
      bucketError(Object.assign(new Error('wrapped'), { cause: { code: 'ECONNREFUSED' } })),
    ).toMatchObject({ code: 'unavailable' });
    expect(bucketError(Object.assign(new Error('slow'), { name: 'TimeoutError' }))).toMatchObject({
      code: 'timeout',
    });
    const denied = bucketError(s3Error(403));
    expect(denied).not.toBeInstanceOf(AppError);
  });

  it('recognises errors from another realm (no instanceof Error) and SDK errors without an answer', () => {
    // What a socket error thrown in another realm looks like from here: a plain object.
    expect(bucketError({ name: 'Error', message: 'socket hang up' })).toMatchObject({ code: 'unavailable' });
    expect(bucketError({ name: 'TimeoutError', message: 'slow' })).toMatchObject({ code: 'timeout' });
    expect(
      bucketError(Object.assign(new Error('Unexpected end'), { $metadata: { attempts: 3 } })),
    ).toMatchObject({
      code: 'unavailable',
    });
  });
});
