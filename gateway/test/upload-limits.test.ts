/**
 * The gateway's own upload limits, enforced while the multipart body streams: a file over the
 * per-file limit, too many files, or a body over the total limit is a 413 and trains nothing.
 */
import {
  distinctPhotos,
  paidInitPayment,
  photoForm,
  startMesh,
  waitFor,
  type Mesh,
} from '@atelier/infra/testing';

let mesh: Mesh;
let account: { accountId: string; apiKey: string };

beforeAll(async () => {
  mesh = await startMesh({
    env: {
      UPLOAD_MAX_FILE_BYTES: '200000',
      UPLOAD_MAX_FILES: '6',
      UPLOAD_MAX_TOTAL_BYTES: '400000',
      RATE_LIMIT_PER_WINDOW: '10000',
    },
  });
  account = await mesh.createAccount();
});
afterAll(() => mesh?.stop());

async function attempt(files: Array<{ name: string; type: string; data: Buffer }>) {
  const paymentId = await paidInitPayment(mesh, account);
  const res = await mesh.api(`/api/v1/versions/train/${paymentId}`, {
    key: account.apiKey,
    method: 'POST',
    body: photoForm(files),
  });
  const body = (await res.json()) as { status: number; type: string; detail: string };
  const payment = (await (
    await mesh.api(`/api/v1/payments/${paymentId}`, { key: account.apiKey })
  ).json()) as { version_id: string | null };
  return { status: res.status, body, versionId: payment.version_id };
}

/** An upload that sends the start of one photo and then nothing more, until `abort()`: a client
 * that stalls, then goes away. */
function stalledUpload(paymentId: string, photo: Buffer, headers: Record<string, string> = {}) {
  const boundary = 'atelier-test-boundary';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
  );
  const controller = new AbortController();
  let sent!: () => void;
  const firstPartSent = new Promise<void>((resolve) => (sent = resolve));
  const request = fetch(`${mesh.gateway.url}/api/v1/versions/train/${paymentId}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${account.apiKey}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      ...headers,
    },
    body: new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(Buffer.concat([head, photo.subarray(0, 1000)])));
        sent();
      },
    }),
    signal: controller.signal,
    duplex: 'half',
  });
  return {
    firstPartSent,
    async abort() {
      controller.abort();
      await request.catch(() => undefined);
    },
  };
}

it('answers 413 for a file over the per-file limit', async () => {
  const photos = await distinctPhotos(5);
  const big = {
    name: 'big.jpg',
    type: 'image/jpeg',
    data: Buffer.concat([photos[0]!.data, Buffer.alloc(250_000)]),
  };
  const result = await attempt([...photos.slice(1), big]);
  expect(result).toMatchObject({
    status: 413,
    body: {
      type: expect.stringMatching(/payload-too-large$/),
      detail: expect.stringMatching(/big\.jpg/),
    },
    versionId: null,
  });
});

it('answers 413 for more files than allowed', async () => {
  const result = await attempt(await distinctPhotos(7));
  expect(result).toMatchObject({
    status: 413,
    body: { detail: expect.stringMatching(/more than 6 files/) },
    versionId: null,
  });
});

it('answers 413 when the whole upload is over the total limit', async () => {
  const photos = await distinctPhotos(5);
  const padded = photos.map((p) => ({ ...p, data: Buffer.concat([p.data, Buffer.alloc(150_000)]) }));
  const result = await attempt(padded);
  expect(result).toMatchObject({
    status: 413,
    body: { detail: expect.stringMatching(/in total/) },
    versionId: null,
  });
});

it('answers 415 for a body that is not multipart, and 400 for a broken multipart body', async () => {
  const paymentId = await paidInitPayment(mesh, account);
  const path = `/api/v1/versions/train/${paymentId}`;
  const json = await mesh.api(path, { key: account.apiKey, method: 'POST', json: { images: [] } });
  expect(json.status).toBe(415);
  const broken = await mesh.api(path, {
    key: account.apiKey,
    method: 'POST',
    headers: { 'content-type': 'multipart/form-data; boundary=xyz' },
    body: '--xyz\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\n\r\nnot finished',
  });
  expect(broken.status).toBe(400);
  // The broken body did not take the gateway down.
  expect((await fetch(`${mesh.gateway.url}/healthz`)).status).toBe(200);
  const payment = (await (
    await mesh.api(`/api/v1/payments/${paymentId}`, { key: account.apiKey })
  ).json()) as { version_id: string | null };
  expect(payment.version_id).toBeNull();
});

it('releases the payment lock and keeps the payment unused when the client disconnects mid-upload', async () => {
  const paymentId = await paidInitPayment(mesh, account);
  const [photo] = await distinctPhotos(1);
  const upload = stalledUpload(paymentId, photo!.data);
  await upload.firstPartSent;
  const lockKey = `lock:payment:${paymentId}`;
  await waitFor(async () => (await mesh.gateway.deps.redis.exists(lockKey)) === 1, {
    what: 'the upload to hold the lock',
  });
  await upload.abort();
  await waitFor(async () => (await mesh.gateway.deps.redis.exists(lockKey)) === 0, {
    what: 'the lock to be released',
  });
  const payment = (await (
    await mesh.api(`/api/v1/payments/${paymentId}`, { key: account.apiKey })
  ).json()) as { version_id: string | null };
  expect(payment.version_id).toBeNull();
});

it('replays the first 202 for a repeated Idempotency-Key on the same payment', async () => {
  const paymentId = await paidInitPayment(mesh, account);
  const photos = await distinctPhotos(5);
  const send = () =>
    mesh.api(`/api/v1/versions/train/${paymentId}`, {
      key: account.apiKey,
      method: 'POST',
      body: photoForm(photos),
      headers: { 'idempotency-key': `train-${paymentId}` },
    });
  const first = await send();
  expect(first.status).toBe(202);
  const firstBody = await first.text();
  const again = await send();
  expect(again.status).toBe(202);
  expect(again.headers.get('idempotent-replayed')).toBe('true');
  expect(await again.text()).toBe(firstBody);
});

describe('a repeated Idempotency-Key', () => {
  const post = (paymentId: string, body: FormData, idempotencyKey?: string) =>
    mesh.api(`/api/v1/versions/train/${paymentId}`, {
      key: account.apiKey,
      method: 'POST',
      body,
      headers: idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
    });
  const answer = async (res: Response) => {
    const { request_id: _, ...problem } = (await res.json()) as Record<string, unknown>;
    return { status: res.status, problem };
  };

  it('reads its body with the first upload’s checks: the same 400 or 413, not 422', async () => {
    const photos = await distinctPhotos(5);
    const paymentId = await paidInitPayment(mesh, account);
    const idempotencyKey = `checks-${paymentId}`;
    expect((await post(paymentId, photoForm(photos), idempotencyKey)).status).toBe(202);

    const cases: Array<[what: string, body: () => FormData, status: number, detail: RegExp]> = [
      [
        'a file outside "images"',
        () => {
          const form = photoForm(photos);
          form.append('avatar', new Blob([photos[0]!.data], { type: 'image/jpeg' }), 'me.jpg');
          return form;
        },
        400,
        /unexpected file field "avatar"/,
      ],
      [
        'a NUL in a text field',
        () => photoForm(photos, { class: 'man\0' }),
        400,
        /form\.class: contains a NUL/,
      ],
      [
        'a photo over the per-file limit',
        () =>
          photoForm([
            ...photos,
            {
              name: 'big.jpg',
              type: 'image/jpeg',
              data: Buffer.concat([photos[0]!.data, Buffer.alloc(250_000)]),
            },
          ]),
        413,
        /^big\.jpg is larger than 200000 bytes$/,
      ],
    ];
    for (const [what, body, status, detail] of cases) {
      // The same body as a first upload, on a payment of its own so that nothing else answers.
      const first = await answer(await post(await paidInitPayment(mesh, account), body()));
      expect({ what, ...first }).toEqual({
        what,
        status,
        problem: expect.objectContaining({ detail: expect.stringMatching(detail) }),
      });
      const replay = await answer(await post(paymentId, body(), idempotencyKey));
      expect({ what, ...replay }).toEqual({ what, ...first });
    }
  });

  // A repeat reads its body outside the lock and never rewrites the stored answer, so a client
  // that goes mid-body must leave that answer as it was. (The read itself ending, rather than
  // staying pending, cannot be seen over HTTP once the client is gone: upload.unit.test.ts.)
  it('keeps its answer for the next repeat when a repeat’s client disconnects mid-body', async () => {
    const photos = await distinctPhotos(5);
    const paymentId = await paidInitPayment(mesh, account);
    const idempotencyKey = `gone-${paymentId}`;
    const accepted = await post(paymentId, photoForm(photos), idempotencyKey);
    expect(accepted.status).toBe(202);
    const acceptedBody = await accepted.text();

    const upload = stalledUpload(paymentId, photos[0]!.data, { 'idempotency-key': idempotencyKey });
    await upload.firstPartSent;
    await upload.abort();

    const again = await post(paymentId, photoForm(photos), idempotencyKey);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(acceptedBody);
  });
});
