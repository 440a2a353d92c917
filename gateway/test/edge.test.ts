/**
 * What the gateway refuses or accepts at its edge, through the real mesh: text Postgres cannot
 * store, Replicate's large training webhooks, /metrics only on the metrics port, failed key checks
 * limited per client address, and listing cursors that are not real.
 */
import { randomUUID } from 'node:crypto';
import {
  paidInitPayment,
  startMesh,
  waitFor,
  type Mesh,
  postReplicateWebhook,
  signedWebhookHeaders,
} from '@atelier/infra/testing';

let mesh: Mesh;
let key: string;
let account: { accountId: string; apiKey: string };
let paymentId: string | undefined;

beforeAll(async () => {
  mesh = await startMesh({
    env: {
      RATE_LIMIT_PER_WINDOW: '100000',
      AUTH_FAILURES_PER_WINDOW: '5',
      AUTH_FAILURE_WINDOW_MS: '10000',
      // Failed key checks are counted per client address, and every test file is 127.0.0.1: a
      // Redis database of its own keeps other files' 401s (deletion's revoked keys) out of this
      // file's window, or the window never passes.
      REDIS_URL: `${process.env.REDIS_URL!.replace(/\/\d*$/, '')}/15`,
    },
  });
  account = await mesh.createAccount();
  key = account.apiKey;
});
afterAll(() => mesh?.stop());

interface ProblemJson {
  status: number;
  detail: string;
  errors?: Array<{ field: string }>;
}

describe('text Postgres cannot store', () => {
  const payment = (body: string | Buffer, path = '/api/v1/payments/create') =>
    mesh.api(path, { key, method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it.each([
    ['a NUL in a JSON string', '{"plan_id":"basic\\u0000init"}', 'body.plan_id'],
    ['a lone surrogate in a JSON string', '{"plan_id":"basic\\ud800init"}', 'body.plan_id'],
    ['a NUL in a JSON key', '{"plan_id":"basic_init","x\\u0000":1}', 'body key'],
  ])('%s is a 400 naming the field', async (_what, body, field) => {
    const res = await payment(body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const problem = (await res.json()) as ProblemJson;
    expect(problem.errors?.[0]?.field).toBe(field);
  });

  it('invalid UTF-8 bytes in a JSON body are a 400', async () => {
    const res = await payment(
      Buffer.concat([Buffer.from('{"plan_id":"basic'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as ProblemJson).detail).toMatch(/UTF-8/);
  });

  it.each([
    ['%00', 'a NUL'],
    ['%FF', 'invalid UTF-8'],
    ['%ED%A0%80', 'an encoded surrogate'],
  ])('%s (%s) in a query is a 400 naming the parameter', async (escaped) => {
    const res = await mesh.api(`/api/v1/prompts/list/${randomUUID()}?cursor=a${escaped}b`, { key });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ProblemJson).errors?.[0]?.field).toBe('query.cursor');
  });

  it.each([
    ['a NUL in a form field', 'name="class"', 'ma\u0000n', 'form.class'],
    // A raw NUL in a part header is malformed multipart already; the RFC 5987 form decodes to one.
    ['a NUL in a file name', 'name="images"; filename*=utf-8\'\'a%00.jpg', 'x', 'images[0].filename'],
    ['invalid UTF-8 in a file name', 'name="images"; filename="a\udcff.jpg"', 'x', 'images[0].filename'],
  ])('%s of an upload is a 400 naming it', async (_what, disposition, value, field) => {
    paymentId ??= await paidInitPayment(mesh, account);
    const raw = (s: string) => Buffer.from(s.replace(/\udcff/g, '\u00ff'), 'latin1');
    const body = Buffer.concat([
      raw(`--x\r\ncontent-disposition: form-data; ${disposition}\r\ncontent-type: image/jpeg\r\n\r\n`),
      Buffer.from(value),
      raw('\r\n--x--\r\n'),
    ]);
    const res = await mesh.api(`/api/v1/versions/train/${paymentId}`, {
      key,
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      body,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ProblemJson).errors?.[0]?.field).toBe(field);
  });
});

describe('the Replicate webhook route', () => {
  const deliver = (body: string, secret: string) =>
    postReplicateWebhook(mesh, 'training', body, signedWebhookHeaders(secret, body));
  // A training's logs: real runs send megabytes of them with every webhook.
  const bigTraining = () =>
    JSON.stringify({
      id: `t_${randomUUID().replace(/-/g, '')}`,
      status: 'processing',
      logs: 'step 1/1000 loss=0.1234\n'.repeat(Math.ceil((5 * 1024 * 1024) / 24)),
      input: {},
      output: null,
      error: null,
    });

  it('accepts a signed 5 MB training webhook', async () => {
    const body = bigTraining();
    expect(body.length).toBeGreaterThan(5 * 1024 * 1024);
    const res = await deliver(body, mesh.replicate.webhookSecret);
    expect(res.status).toBe(200);
  });

  it('still verifies a 5 MB body before anything reads it', async () => {
    const res = await deliver(bigTraining(), 'whsec_' + Buffer.from('not the secret').toString('base64'));
    expect(res.status).toBe(400);
  });
});

describe('/metrics', () => {
  it('is served on the metrics port, not on the public one', async () => {
    expect((await fetch(`${mesh.gateway.url}/metrics`)).status).toBe(404);
    const metrics = await fetch(`http://127.0.0.1:${mesh.gateway.metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/atelier_http_requests_total/);
  });
});

describe('listing cursors', () => {
  const cursor = (createdKey: string) =>
    Buffer.from(JSON.stringify([createdKey, randomUUID()])).toString('base64url');

  it('an impossible date in a cursor is a 400, not a 500', async () => {
    const res = await mesh.api(
      `/api/v1/prompts/list/${randomUUID()}?cursor=${cursor('2026-02-30T25:61:00.000000Z')}`,
      { key },
    );
    expect(res.status).toBe(400);
  });

  it("another account's (or an unknown) version with a valid cursor is a 404, not an empty page", async () => {
    const res = await mesh.api(
      `/api/v1/prompts/list/${randomUUID()}?cursor=${cursor('2026-01-30T10:00:00.000000Z')}`,
      { key },
    );
    expect(res.status).toBe(404);
  });
});

// Last: it spends this client address's budget of failed key checks.
describe('failed key checks', () => {
  it('are limited per client address: 429 with Retry-After, while a cached good key still works', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push((await mesh.api('/api/v1/payments/' + randomUUID(), { key: `atl_guess_${i}` })).status);
    }
    // Other test files' failed checks count too (same address, same Redis): at most 5 get a key
    // check, then the address is refused without one, to the end.
    const firstRefusal = statuses.indexOf(429);
    expect(firstRefusal).toBeGreaterThanOrEqual(0);
    expect(firstRefusal).toBeLessThanOrEqual(5);
    expect(statuses.slice(0, firstRefusal).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(firstRefusal).every((s) => s === 429)).toBe(true);
    const limited = await mesh.api('/api/v1/plans/../payments/' + randomUUID(), { key: 'atl_guess_x' });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // A key already verified is not checked again, so its owner is not locked out with the guesser.
    expect((await mesh.api(`/api/v1/payments/${randomUUID()}`, { key })).status).toBe(404);
    await waitFor(
      async () => (await mesh.api('/api/v1/payments/' + randomUUID(), { key: 'atl_guess_y' })).status === 401,
      { what: 'the window to pass', intervalMs: 1_000, timeoutMs: 30_000 },
    );
  });
});
