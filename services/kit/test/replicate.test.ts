import net from 'node:net';
import { createHmac } from 'node:crypto';
import { AppError, createReplicateClient, replicateError, verifyReplicateWebhook } from '@atelier/kit';
import { startReplicateSandbox, type ReplicateSandbox } from '@atelier/infra/sandbox/replicate';

let sandbox: ReplicateSandbox;
beforeAll(async () => {
  sandbox = await startReplicateSandbox({ trainingMs: 100, predictionMs: 100 });
});
afterAll(() => sandbox.stop());

describe('createReplicateClient', () => {
  it('waits out Retry-After on a 429 before trying again', async () => {
    const client = createReplicateClient({ token: sandbox.token, baseUrl: sandbox.baseUrl });
    sandbox.faults.failNextApiCalls({
      count: 1,
      status: 429,
      retryAfterSeconds: 1,
      method: 'GET',
      path: '/v1/account',
    });
    await client.accounts.current();
    const calls = sandbox.calls().filter((c) => c.path === '/v1/account');
    expect(calls.map((c) => c.status)).toEqual([429, 200]);
    expect(Date.parse(calls[1]!.at) - Date.parse(calls[0]!.at)).toBeGreaterThanOrEqual(950);
  });

  it('sends a create at most once when the connection fails, and reports 503', async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const client = createReplicateClient({ token: 't', baseUrl: `http://127.0.0.1:${port}/v1` });
      const err = await client.predictions
        .create({ version: 'a'.repeat(64), input: {} })
        .catch((e: unknown) => e);
      expect(connections).toBe(1);
      const mapped = replicateError(err);
      expect(mapped).toBeInstanceOf(AppError);
      expect(mapped.code).toBe('unavailable');
    } finally {
      server.close();
    }
  });
});

describe('replicateError', () => {
  it("makes Replicate's refusal of our request a 500, never the customer's 400, and keeps 404 apart", async () => {
    const client = createReplicateClient({ token: sandbox.token, baseUrl: sandbox.baseUrl });
    const stranger = createReplicateClient({ token: 'r8_not_ours', baseUrl: sandbox.baseUrl });
    const code = async (call: Promise<unknown>) => replicateError(await call.catch((e: unknown) => e)).code;
    // An input the model does not take: 422.
    expect(await code(client.predictions.create({ version: 'a'.repeat(64), input: {} }))).toBe('internal');
    // A token Replicate does not accept: 401.
    expect(await code(stranger.accounts.current())).toBe('internal');
    expect(await code(client.predictions.get('no-such-prediction'))).toBe('not_found');
  });
});

describe('verifyReplicateWebhook', () => {
  const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
  const sign = (id: string, ts: string, body: string) =>
    `v1,${createHmac('sha256', Buffer.from(secret.slice(6), 'base64'))
      .update(`${id}.${ts}.${body}`)
      .digest('base64')}`;
  const now = Date.now();
  const ts = String(Math.floor(now / 1000));
  const body = '{"id":"abc","status":"succeeded"}';

  it('accepts a correct signature, also among several', () => {
    expect(() =>
      verifyReplicateWebhook(
        {
          webhookId: 'msg_1',
          webhookTimestamp: ts,
          webhookSignature: sign('msg_1', ts, body),
          body: Buffer.from(body),
        },
        secret,
        300,
        now,
      ),
    ).not.toThrow();
    expect(() =>
      verifyReplicateWebhook(
        {
          webhookId: 'msg_1',
          webhookTimestamp: ts,
          webhookSignature: `v1,AAAA ${sign('msg_1', ts, body)}`,
          body: Buffer.from(body),
        },
        secret,
        300,
        now,
      ),
    ).not.toThrow();
  });

  it('rejects a tampered body, another id, a wrong secret and a stale timestamp', () => {
    const cases = [
      {
        webhookId: 'msg_1',
        webhookTimestamp: ts,
        webhookSignature: sign('msg_1', ts, body),
        body: Buffer.from(body.replace('succeeded', 'failed')),
      },
      {
        webhookId: 'msg_2',
        webhookTimestamp: ts,
        webhookSignature: sign('msg_1', ts, body),
        body: Buffer.from(body),
      },
      {
        webhookId: 'msg_1',
        webhookTimestamp: ts,
        webhookSignature: 'v1,' + Buffer.alloc(32).toString('base64'),
        body: Buffer.from(body),
      },
    ];
    for (const webhook of cases) {
      let error: unknown;
      try {
        verifyReplicateWebhook(webhook, secret, 300, now);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'invalid_signature' });
    }
    const old = String(Math.floor(now / 1000) - 301);
    expect(() =>
      verifyReplicateWebhook(
        {
          webhookId: 'msg_1',
          webhookTimestamp: old,
          webhookSignature: sign('msg_1', old, body),
          body: Buffer.from(body),
        },
        secret,
        300,
        now,
      ),
    ).toThrow(/tolerance/);
  });
});
