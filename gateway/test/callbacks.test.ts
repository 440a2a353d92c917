/**
 * Callbacks to the customer's own server, end to end: events announced by billing (payments),
 * trainer (versions) and inferencer (prompts) reach a real HTTP receiver, and every signature
 * is verified with the `standardwebhooks` library, as a customer would. Time moves through
 * billing's clock seam, never by sleeping through a back-off.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { Webhook } from 'standardwebhooks';
import { billingConfigSchema, startBilling } from '@atelier/billing';
import { loadConfig, offsetClock, type RunningService } from '@atelier/kit';
import {
  distinctPhotos,
  paidInitPayment,
  photoForm,
  startMesh,
  waitFor,
  type Mesh,
} from '@atelier/infra/testing';

interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A customer's server: records every request, answers from a script (then 200). */
class Receiver {
  readonly requests: Received[] = [];
  script: number[] = [];
  private server: http.Server | undefined;
  port = 0;

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({
          path: req.url ?? '',
          headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
          body: Buffer.concat(chunks).toString('utf8'),
        });
        res.statusCode = this.script.shift() ?? 200;
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  url(path = '/hook') {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  of(type: string, path?: string) {
    return this.requests.filter(
      (r) => (!path || r.path === path) && (JSON.parse(r.body) as { type: string }).type === type,
    );
  }

  async stop() {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

const clock = offsetClock();
const nonEmpty = <T>(a: T[]) => (a.length ? a : undefined);
let mesh: Mesh;
let db: Client;

/** Verifies as the customer would, its clock agreeing with the sender's (both moved by the test). */
function verify(secret: string, r: Received): { id: string; type: string; data: Record<string, unknown> } {
  const now = jest.spyOn(Date, 'now').mockReturnValue(clock.now().getTime());
  try {
    return new Webhook(secret).verify(r.body, r.headers) as {
      id: string;
      type: string;
      data: Record<string, unknown>;
    };
  } finally {
    now.mockRestore();
  }
}

beforeAll(async () => {
  mesh = await startMesh({ clock, env: { RATE_LIMIT_PER_WINDOW: '100000' } });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
});
let restarted: RunningService | undefined;
afterAll(async () => {
  await restarted?.stop();
  await db?.end();
  await mesh?.stop();
});

async function createEndpoint(key: string, url: string, events: string[] = []) {
  const res = await mesh.api('/api/v1/webhook-endpoints', {
    key,
    method: 'POST',
    json: { url, events, description: 'test' },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { endpoint_id: string; secret: string; status: string };
}

async function deliveries(key: string, query = '') {
  const res = await mesh.api(`/api/v1/webhook-deliveries${query}`, { key });
  expect(res.status).toBe(200);
  return (
    (await res.json()) as {
      deliveries: Array<{
        delivery_id: string;
        event_id: string;
        event_type: string;
        status: string;
        attempts: number;
        last_http_status: number | null;
        next_attempt_at: string | null;
      }>;
    }
  ).deliveries;
}

it('a paid payment is announced to the endpoint, signed; the data is the payment as GET returns it', async () => {
  const receiver = await new Receiver().start();
  try {
    const account = await mesh.createAccount();
    const endpoint = await createEndpoint(account.apiKey, receiver.url(), ['payment.paid']);
    expect(endpoint.secret).toMatch(/^whsec_/);
    const listed = await (await mesh.api('/api/v1/webhook-endpoints', { key: account.apiKey })).json();
    expect(JSON.stringify(listed)).not.toContain(endpoint.secret);

    const paymentId = await paidInitPayment(mesh, account);
    const [hit] = await waitFor(() => nonEmpty(receiver.of('payment.paid')), {
      what: 'the payment.paid callback',
    });
    const event = verify(endpoint.secret, hit!);
    expect(hit!.headers['webhook-id']).toBe(event.id);
    const get = await (await mesh.api(`/api/v1/payments/${paymentId}`, { key: account.apiKey })).json();
    expect(event.data).toEqual(get);
    expect(() =>
      verify(endpoint.secret, { ...hit!, body: hit!.body.replace('"paid"', '"pending"') }),
    ).toThrow(/signature/);
  } finally {
    await receiver.stop();
  }
});

it('an endpoint answering 500 twice then 200 gets the event three times with one webhook-id', async () => {
  const receiver = await new Receiver().start();
  try {
    receiver.script = [500, 500, 200];
    const account = await mesh.createAccount();
    const endpoint = await createEndpoint(account.apiKey, receiver.url());
    await paidInitPayment(mesh, account);
    for (const n of [1, 2, 3]) {
      await waitFor(() => receiver.of('payment.paid').length >= n, { what: `attempt ${n}` });
      if (n < 3) {
        const [d] = await waitFor(async () => {
          const list = await deliveries(account.apiKey);
          return list[0]?.attempts === n && list[0].last_http_status === 500 && list;
        });
        expect(d!.status).toBe('pending');
        // The back-off is crossed by moving the clock, not by waiting.
        clock.advance(new Date(d!.next_attempt_at!).getTime() - clock.now().getTime() + 1);
      }
    }
    const hits = receiver.of('payment.paid');
    expect(hits).toHaveLength(3);
    expect(new Set(hits.map((h) => h.headers['webhook-id'])).size).toBe(1);
    for (const h of hits) verify(endpoint.secret, h);
    const [d] = await waitFor(async () => {
      const list = await deliveries(account.apiKey, '?status=delivered');
      return list.length ? list : undefined;
    });
    expect(d).toMatchObject({
      status: 'delivered',
      attempts: 3,
      last_http_status: 200,
      next_attempt_at: null,
    });
  } finally {
    await receiver.stop();
  }
});

it('a forged or replayed callback is rejected by the customer verifier', async () => {
  const receiver = await new Receiver().start();
  try {
    const account = await mesh.createAccount();
    const endpoint = await createEndpoint(account.apiKey, receiver.url());
    await paidInitPayment(mesh, account);
    const [hit] = await waitFor(() => nonEmpty(receiver.of('payment.paid')));
    expect(verify(endpoint.secret, hit!).type).toBe('payment.paid');
    // Forged: signed with another secret, or the body changed.
    const other = await createEndpoint(account.apiKey, receiver.url('/other'));
    expect(() => verify(other.secret, hit!)).toThrow(/signature/);
    expect(() =>
      verify(endpoint.secret, { ...hit!, headers: { ...hit!.headers, 'webhook-id': randomUUID() } }),
    ).toThrow(/signature/);
    // Replayed later than the verifier's tolerance (5 minutes).
    clock.advance(6 * 60_000);
    expect(() => verify(endpoint.secret, hit!)).toThrow(/too old/);
  } finally {
    await receiver.stop();
  }
});

it('after a rotation both secrets verify for 24 h, then only the new one', async () => {
  const receiver = await new Receiver().start();
  try {
    const account = await mesh.createAccount();
    const endpoint = await createEndpoint(account.apiKey, receiver.url());
    const rotated = await mesh.api(`/api/v1/webhook-endpoints/${endpoint.endpoint_id}/rotate-secret`, {
      key: account.apiKey,
      method: 'POST',
    });
    expect(rotated.status).toBe(200);
    const { secret, previous_secret_expires_at } = (await rotated.json()) as {
      secret: string;
      previous_secret_expires_at: string;
    };
    expect(secret).not.toBe(endpoint.secret);
    expect(new Date(previous_secret_expires_at).getTime() - clock.now().getTime()).toBeGreaterThan(
      23 * 3600_000,
    );

    await paidInitPayment(mesh, account);
    const [first] = await waitFor(() => nonEmpty(receiver.of('payment.paid')));
    expect(first!.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    verify(secret, first!);
    verify(endpoint.secret, first!);

    clock.advance(25 * 3600_000);
    await paidInitPayment(mesh, account);
    const second = await waitFor(
      () => receiver.of('payment.paid').length >= 2 && receiver.of('payment.paid')[1],
    );
    expect(second.headers['webhook-signature']!.split(' ')).toHaveLength(1);
    verify(secret, second);
    expect(() => verify(endpoint.secret, second)).toThrow(/signature/);
  } finally {
    await receiver.stop();
  }
});

it('training and prompting with callback_url: version and prompt events reach it, signed with the callback secret', async () => {
  const receiver = await new Receiver().start();
  try {
    const account = await mesh.createAccount();
    const secretRes = await mesh.api('/api/v1/account/callback-secret', {
      key: account.apiKey,
      method: 'POST',
    });
    expect(secretRes.status).toBe(200);
    const { secret } = (await secretRes.json()) as { secret: string };

    const paymentId = await paidInitPayment(mesh, account, 4);
    const train = await mesh.api(`/api/v1/versions/train/${paymentId}`, {
      key: account.apiKey,
      method: 'POST',
      body: photoForm(await distinctPhotos(5), { class: 'man', callback_url: receiver.url('/version') }),
    });
    expect(train.status).toBe(202);
    const { version_id } = (await train.json()) as { version_id: string };
    const [succeeded] = await waitFor(() => nonEmpty(receiver.of('version.succeeded', '/version')), {
      timeoutMs: 30_000,
      what: 'version.succeeded at the callback URL',
    });
    const versionEvent = verify(secret, succeeded!);
    expect(versionEvent.data).toMatchObject({ version_id, status: 'succeeded' });

    await waitFor(
      async () =>
        (
          (await (await mesh.api(`/api/v1/versions/info/${version_id}`, { key: account.apiKey })).json()) as {
            is_ready: boolean;
          }
        ).is_ready,
      { timeoutMs: 30_000, what: 'the version to be ready' },
    );
    const completedAt = Date.now();
    const prompt = await mesh.api(`/api/v1/prompts/create/${version_id}`, {
      key: account.apiKey,
      method: 'POST',
      json: {
        prompt: 'a photo of TOK',
        num_outputs: 1,
        width: 256,
        height: 256,
        callback_url: receiver.url('/prompt'),
      },
    });
    expect(prompt.status).toBe(202);
    const { prompt_id } = (await prompt.json()) as { prompt_id: string };
    const [done] = await waitFor(() => nonEmpty(receiver.of('prompt.succeeded', '/prompt')), {
      timeoutMs: 30_000,
      what: 'prompt.succeeded at the callback URL',
    });
    expect(completedAt).toBeGreaterThan(0);
    const promptEvent = verify(secret, done!);
    expect(promptEvent.data).toMatchObject({ prompt_id, status: 'succeeded' });
    expect((promptEvent.data.images as Array<{ url: string }>)[0]!.url).toMatch(/^http/);
  } finally {
    await receiver.stop();
  }
});

it('a replica that dies mid-attempt leaves a lease; the event is attempted again when it ends, with the same webhook-id', async () => {
  const receiver = await new Receiver().start();
  try {
    const account = await mesh.createAccount();
    const endpoint = await createEndpoint(account.apiKey, receiver.url());
    // A claim whose replica died before sending: done here with the claim statement itself.
    const eventId = randomUUID();
    const now = clock.now();
    await db.query(
      // eslint-disable-next-line no-restricted-syntax -- this test's own scenario: the rows a replica's claim leaves when it dies before sending
      `INSERT INTO billing.webhook_events (id, account_id, type, payload, created_at) VALUES ($1, $2, 'payment.paid', $3, $4)`,
      [
        eventId,
        account.accountId,
        JSON.stringify({ id: eventId, type: 'payment.paid', created_at: now, data: {} }),
        now,
      ],
    );
    await db.query(
      // eslint-disable-next-line no-restricted-syntax -- this test's own scenario: the rows a replica's claim leaves when it dies before sending
      `INSERT INTO billing.webhook_deliveries (id, event_id, endpoint_id, account_id, url, attempts, next_attempt_at)
       VALUES ($1, $2, $3, $4, $5, 1, $6)`,
      [
        randomUUID(),
        eventId,
        endpoint.endpoint_id,
        account.accountId,
        receiver.url(),
        new Date(now.getTime() + 30_000),
      ],
    );
    clock.advance(31_000);
    const [hit] = await waitFor(() => nonEmpty(receiver.requests));
    expect(hit!.headers['webhook-id']).toBe(eventId);
    verify(endpoint.secret, hit!);
    const [d] = await waitFor(async () => {
      const list = await deliveries(account.apiKey, '?status=delivered');
      return list.length ? list : undefined;
    });
    expect(d!.attempts).toBe(2);
  } finally {
    await receiver.stop();
  }
});

it('two replicas never deliver the same attempt: 60 events, each received exactly once', async () => {
  const receiver = await new Receiver().start();
  const second = await startBilling(
    loadConfig(billingConfigSchema, {
      ...mesh.envFor('billing'),
      GRPC_PORT: '0',
      WEBHOOK_DELIVERY_BATCH: '3',
    }),
    { clock },
  );
  try {
    const account = await mesh.createAccount();
    await createEndpoint(account.apiKey, receiver.url());
    const events = Array.from({ length: 60 }, () => ({
      eventId: randomUUID(),
      accountId: account.accountId,
      type: 'prompt.succeeded',
      createdAt: clock.now(),
      dataJson: '{}',
      callbackUrl: '',
    }));
    await mesh.gateway.deps.mesh.billing.publishEvents({ events });
    // Published twice (an outbox relay retrying): still one event each.
    await mesh.gateway.deps.mesh.billing.publishEvents({ events: events.slice(0, 10) });
    await waitFor(
      async () =>
        (
          await db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM billing.webhook_deliveries WHERE account_id = $1 AND status = 'delivered'`,
            [account.accountId],
          )
        ).rows[0]!.n === 60,
      { timeoutMs: 30_000, what: '60 deliveries' },
    );
    const ids = receiver.requests.map((r) => r.headers['webhook-id']);
    expect(ids).toHaveLength(60);
    expect(new Set(ids).size).toBe(60);
  } finally {
    await second.stop();
    await receiver.stop();
  }
});

it('an endpoint failing for 3 days is disabled, shown so, and the account told on its other endpoints', async () => {
  const good = await new Receiver().start();
  const bad = await new Receiver().start();
  try {
    bad.script = Array<number>(100).fill(500);
    const account = await mesh.createAccount();
    const healthy = await createEndpoint(account.apiKey, good.url(), ['payment.refunded']);
    const failing = await createEndpoint(account.apiKey, bad.url());
    await paidInitPayment(mesh, account);
    await waitFor(() => bad.requests.length >= 1);
    clock.advance(3 * 24 * 3600_000 + 60_000);
    await paidInitPayment(mesh, account);
    const [told] = await waitFor(() => nonEmpty(good.of('webhook_endpoint.disabled')), {
      timeoutMs: 20_000,
      what: 'webhook_endpoint.disabled on the other endpoint',
    });
    expect(verify(healthy.secret, told!).data).toMatchObject({
      endpoint_id: failing.endpoint_id,
      status: 'disabled',
    });
    const list = (await (await mesh.api('/api/v1/webhook-endpoints', { key: account.apiKey })).json()) as {
      endpoints: Array<{ endpoint_id: string; status: string; disabled_at: string | null }>;
    };
    expect(list.endpoints.find((e) => e.endpoint_id === failing.endpoint_id)).toMatchObject({
      status: 'disabled',
    });
    expect(list.endpoints.find((e) => e.endpoint_id === healthy.endpoint_id)).toMatchObject({
      status: 'enabled',
    });
  } finally {
    await good.stop();
    await bad.stop();
  }
});

it('validation, tenancy and redelivery', async () => {
  const receiver = await new Receiver().start();
  try {
    const account = await mesh.createAccount();
    const other = await mesh.createAccount();
    const bad = await mesh.api('/api/v1/webhook-endpoints', {
      key: account.apiKey,
      method: 'POST',
      json: { url: 'ftp://x.example.com', events: [] },
    });
    expect(bad.status).toBe(400);
    const unknownType = await mesh.api('/api/v1/webhook-endpoints', {
      key: account.apiKey,
      method: 'POST',
      json: { url: receiver.url(), events: ['prompt.done'] },
    });
    expect(unknownType.status).toBe(400);

    const endpoint = await createEndpoint(account.apiKey, receiver.url());
    await paidInitPayment(mesh, account);
    const [d] = await waitFor(async () => {
      const list = await deliveries(account.apiKey, '?status=delivered');
      return list.length ? list : undefined;
    });
    expect(await deliveries(other.apiKey)).toHaveLength(0);
    const foreign = await mesh.api(`/api/v1/webhook-deliveries/${d!.delivery_id}/redeliver`, {
      key: other.apiKey,
      method: 'POST',
    });
    expect(foreign.status).toBe(404);
    const again = await mesh.api(`/api/v1/webhook-deliveries/${d!.delivery_id}/redeliver`, {
      key: account.apiKey,
      method: 'POST',
    });
    expect(again.status).toBe(202);
    await waitFor(() => receiver.requests.length >= 2, { what: 'the redelivery' });
    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
    verify(endpoint.secret, receiver.requests[1]!);

    const foreignDelete = await mesh.api(`/api/v1/webhook-endpoints/${endpoint.endpoint_id}`, {
      key: other.apiKey,
      method: 'DELETE',
    });
    expect(foreignDelete.status).toBe(404);
    const del = await mesh.api(`/api/v1/webhook-endpoints/${endpoint.endpoint_id}`, {
      key: account.apiKey,
      method: 'DELETE',
    });
    expect(del.status).toBe(204);
  } finally {
    await receiver.stop();
  }
});

it('a create retried with its Idempotency-Key after the stored answer is gone finds the first endpoint and secret', async () => {
  const account = await mesh.createAccount();
  const key = `endpoint-${randomUUID()}`;
  const create = () =>
    mesh.api('/api/v1/webhook-endpoints', {
      key: account.apiKey,
      method: 'POST',
      json: { url: 'http://127.0.0.1:9/hook', events: [], description: 'retried' },
      headers: { 'idempotency-key': key },
    });
  const first = await create();
  expect(first.status).toBe(201);
  const firstBody = (await first.json()) as { endpoint_id: string; secret: string };
  // The answer was lost and its record is gone (expired, or never written after a 5xx): the retry
  // runs the create again, and must name the same endpoint.
  const redis = mesh.gateway.deps.redis;
  const records = await redis.keys(`idem:${account.accountId}:*`);
  expect(records).toHaveLength(1);
  await redis.del(...records);
  const retry = await create();
  expect(retry.status).toBe(201);
  expect(retry.headers.get('idempotent-replayed')).toBeNull();
  expect(await retry.json()).toMatchObject({ endpoint_id: firstBody.endpoint_id, secret: firstBody.secret });
  const listed = (await (await mesh.api('/api/v1/webhook-endpoints', { key: account.apiKey })).json()) as {
    endpoints: unknown[];
  };
  expect(listed.endpoints).toHaveLength(1);
});

// Last: it replaces billing, and the gateway's channel to it takes a while to reconnect.
it('an endpoint down while the sending replica is killed still gets the event after a restart', async () => {
  const receiver = await new Receiver().start();
  const port = receiver.port;
  await receiver.stop();
  const account = await mesh.createAccount();
  const endpoint = await createEndpoint(account.apiKey, `http://127.0.0.1:${port}/hook`);
  await paidInitPayment(mesh, account);
  const [failed] = await waitFor(async () => {
    const list = await deliveries(account.apiKey);
    return list[0]?.attempts === 1 && list[0].status === 'pending' && list;
  });
  // The replica that made the attempt goes away; another starts on the same database.
  await mesh.billing.stop();
  restarted = await startBilling(
    loadConfig(billingConfigSchema, {
      ...mesh.envFor('billing'),
      GRPC_PORT: mesh.env.BILLING_ADDR!.split(':')[1]!,
    }),
    { clock },
  );
  const back = await new Receiver().start(port);
  try {
    clock.advance(new Date(failed!.next_attempt_at!).getTime() - clock.now().getTime() + 1);
    const [hit] = await waitFor(() => nonEmpty(back.of('payment.paid')), {
      timeoutMs: 20_000,
      what: 'the event after the restart',
    });
    expect(verify(endpoint.secret, hit!).id).toBe(failed!.event_id);
  } finally {
    await back.stop();
  }
});
