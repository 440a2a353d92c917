/**
 * Uploads that must not train: every problem of every photo in one 422, and a bucket outage
 * that answers 503 and leaves the payment usable.
 */
import sharp from 'sharp';
import {
  distinctPhotos,
  paidInitPayment,
  photoForm,
  startMesh,
  startTcpProxy,
  viaProxy,
  waitFor,
  type Mesh,
  type TcpProxy,
} from '@atelier/infra/testing';

let mesh: Mesh;
let bucket: TcpProxy;
let account: { accountId: string; apiKey: string };

beforeAll(async () => {
  const target = new URL(process.env.S3_ENDPOINT!);
  bucket = await startTcpProxy({ host: target.hostname, port: Number(target.port) });
  mesh = await startMesh({
    env: { S3_ENDPOINT: viaProxy(process.env.S3_ENDPOINT!, bucket), RATE_LIMIT_PER_WINDOW: '10000' },
  });
  account = await mesh.createAccount();
});
afterAll(async () => {
  await mesh?.stop();
  await bucket?.close();
});

const upload = (paymentId: string, files: Array<{ name: string; type: string; data: Buffer }>) =>
  mesh.api(`/api/v1/versions/train/${paymentId}`, {
    key: account.apiKey,
    method: 'POST',
    body: photoForm(files),
  });

const paymentJson = async (paymentId: string) =>
  (await (await mesh.api(`/api/v1/payments/${paymentId}`, { key: account.apiKey })).json()) as {
    status: string;
    version_id: string | null;
  };

it('lists a too-small photo, a text file named .jpg, a truncated JPEG and a duplicate in one 422, and trains nothing', async () => {
  const paymentId = await paidInitPayment(mesh, account);
  const good = await distinctPhotos(4);
  const small = {
    name: 'small.jpg',
    type: 'image/jpeg',
    data: await sharp({ create: { width: 300, height: 300, channels: 3, background: '#c33' } })
      .jpeg()
      .toBuffer(),
  };
  const text = {
    name: 'notes.jpg',
    type: 'image/jpeg',
    data: Buffer.from('these are not the photos you are looking for\n'.repeat(20)),
  };
  const full = await sharp({
    create: {
      width: 900,
      height: 900,
      channels: 3,
      background: '#888',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })
    .jpeg()
    .toBuffer();
  const truncated = {
    name: 'cut.jpg',
    type: 'image/jpeg',
    data: full.subarray(0, Math.floor(full.length / 2)),
  };
  const duplicate = { ...good[0]!, name: 'again.jpg' };

  const res = await upload(paymentId, [...good, small, text, truncated, duplicate]);
  expect(res.status).toBe(422);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as { errors: Array<{ file: string; index: number; code: string }> };
  expect(body.errors.map(({ file, index, code }) => ({ file, index, code }))).toEqual([
    { file: 'small.jpg', index: 4, code: 'too_small' },
    { file: 'notes.jpg', index: 5, code: 'unsupported_type' },
    { file: 'cut.jpg', index: 6, code: 'undecodable' },
    { file: 'again.jpg', index: 7, code: 'duplicate' },
  ]);
  expect((await paymentJson(paymentId)).version_id).toBeNull();
});

it('answers 503 while the bucket is down, leaves the payment unused, and the retry trains', async () => {
  const paymentId = await paidInitPayment(mesh, account);
  const photos = await distinctPhotos(5);
  bucket.down();
  try {
    const res = await upload(paymentId, photos);
    expect(res.status).toBe(503);
    const problem = (await res.json()) as { detail: string };
    expect(problem.detail).not.toMatch(/127\.0\.0\.1|ECONN|s3/i);
    expect(await paymentJson(paymentId)).toEqual(
      expect.objectContaining({ status: 'paid', version_id: null }),
    );
  } finally {
    bucket.up();
  }
  const retry = await waitFor(
    async () => {
      const res = await upload(paymentId, photos);
      return res.status === 202 ? res : undefined;
    },
    { what: 'the retry to be accepted once the bucket is back' },
  );
  const { version_id: versionId } = (await retry.json()) as { version_id: string };
  expect((await paymentJson(paymentId)).version_id).toBe(versionId);
});
