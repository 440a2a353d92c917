/**
 * Dependencies that stop answering mid-request, frozen from outside with SIGSTOP (a stalled
 * process with its connections open, not a closed port) and resumed with SIGCONT: this file's
 * own redis-server, and the Postgres backends serving this file's own database. After a thaw
 * the system must be fully usable within seconds: no leftover lock, no stuck Idempotency-Key,
 * no open reservation, and credits that add up.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createRedis, type Redis } from '@atelier/kit';
import { startRedis, type RedisServer } from '@atelier/infra/stack';
import {
  distinctPhotos,
  paidInitPayment,
  readyVersion,
  startMesh,
  waitFor,
  type Mesh,
} from '@atelier/infra/testing';
import { sandboxModelVersion } from '../../services/inferencer/test/support/sandbox-version';

let redisServer: RedisServer;
let redisDir: string;
let redis: Redis;
let mesh: Mesh;
let db: Client;
let owner: { accountId: string; apiKey: string };
let model: { model: string; version: string };

const GRPC_TIMEOUT_MS = 3_000;

beforeAll(async () => {
  redisDir = path.join(process.env.ATELIER_TEST_RUN_DIR!, `redis-freeze-${randomUUID()}`);
  redisServer = await startRedis({ dir: redisDir });
  mesh = await startMesh({
    env: {
      REDIS_URL: redisServer.url,
      GRPC_TIMEOUT_MS: String(GRPC_TIMEOUT_MS),
      UPLOAD_TIMEOUT_MS: '60000',
      AUTH_CACHE_MS: '600000',
      RATE_LIMIT_PER_WINDOW: '100000',
      PREDICTION_CHECK_INTERVAL_MS: '500',
    },
    replicate: { predictionMs: 300 },
  });
  redis = createRedis(redisServer.url);
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  owner = await mesh.createAccount();
  model = await sandboxModelVersion(mesh.replicate);
});
afterAll(async () => {
  await db?.end();
  redis?.disconnect();
  await mesh?.stop();
  await redisServer?.stop();
});

const redisPid = () => Number(fs.readFileSync(path.join(redisDir, 'redis.pid'), 'utf8').trim());

/** The Postgres processes serving this file's database, except the test's own connection. */
async function backendPids(): Promise<number[]> {
  const { rows } = await db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
  );
  return rows.map((r) => r.pid);
}

/** Freezes processes and returns the function that thaws them (also run if the test fails). */
function freeze(pids: number[]): () => void {
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  let thawed = false;
  const thaw = () => {
    if (thawed) return;
    thawed = true;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Gone already.
      }
    }
  };
  thaws.push(thaw);
  return thaw;
}
const thaws: Array<() => void> = [];

/** Where the gateway keeps an Idempotency-Key of the owner's. */
const idempotencyKeyOf = (key: string) =>
  `idem:${owner.accountId}:${createHash('sha256').update(key).digest('hex')}`;
afterEach(() => {
  for (const thaw of thaws.splice(0)) thaw();
});

const createPrompt = (versionId: string, key: string, numOutputs = 2) =>
  mesh.api(`/api/v1/prompts/create/${versionId}`, {
    key: owner.apiKey,
    method: 'POST',
    json: { prompt: 'frozen', num_outputs: numOutputs, width: 256, height: 256 },
    headers: { 'idempotency-key': key },
  });

async function creditsAddUp(versionId: string) {
  const open = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM billing.credit_reservations WHERE version_id = $1 AND status = 'open'`,
    [versionId],
  );
  expect(open.rows[0]!.n).toBe(0);
  const images = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM inferencer.prompt_images i JOIN inferencer.prompts p ON p.id = i.prompt_id
      WHERE p.version_id = $1`,
    [versionId],
  );
  const balance = await db.query<{ granted: number; used: number }>(
    'SELECT granted, used FROM billing.credit_balances WHERE version_id = $1',
    [versionId],
  );
  expect(balance.rows[0]!.used).toBe(images.rows[0]!.n);
  const info = (await (
    await mesh.api(`/api/v1/versions/info/${versionId}`, { key: owner.apiKey })
  ).json()) as {
    images: { granted: number; used: number; remaining: number };
  };
  expect(info.images.granted - info.images.used).toBe(info.images.remaining);
  expect(info.images).toMatchObject({ granted: balance.rows[0]!.granted, used: balance.rows[0]!.used });
}

describe('Postgres frozen mid-request', () => {
  it('a prompt create that times out (504) and is retried with its key makes exactly one prompt; credits add up after the thaw', async () => {
    const versionId = await readyVersion(mesh, owner, 4, model);
    const key = randomUUID();
    const idemKey = idempotencyKeyOf(key);
    // The key is checked now, while Postgres answers, and cached (the payment just made it drop
    // the account's cached keys): frozen, the first attempt still gets as far as its key.
    expect((await mesh.api(`/api/v1/versions/info/${versionId}`, { key: owner.apiKey })).status).toBe(200);
    const thaw = freeze(await backendPids());
    const first = createPrompt(versionId, key);
    // While the first attempt hangs on the frozen database, its key is held, and not for long.
    await waitFor(async () => (await redis.exists(idemKey)) === 1, {
      what: 'the first attempt to hold its key',
    });
    const early = await createPrompt(versionId, key);
    expect(early.status).toBe(409);
    expect(Number(early.headers.get('retry-after'))).toBeLessThanOrEqual(GRPC_TIMEOUT_MS / 1000 + 2);
    expect((await first).status).toBe(504);
    thaw();

    const retried = await waitFor(
      async () => {
        const res = await createPrompt(versionId, key);
        return res.status === 202 && ((await res.json()) as { prompt_id: string });
      },
      { what: 'the retry to be accepted', timeoutMs: 20_000, intervalMs: 500 },
    );
    // The key now replays the retry's answer; the prompt is the one the key names.
    const replay = await createPrompt(versionId, key);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(((await replay.json()) as { prompt_id: string }).prompt_id).toBe(retried.prompt_id);

    const rows = await db.query('SELECT id FROM inferencer.prompts WHERE version_id = $1', [versionId]);
    expect(rows.rows).toEqual([{ id: retried.prompt_id }]);
    await waitFor(
      async () =>
        (
          (await (await mesh.api(`/api/v1/prompts/${retried.prompt_id}`, { key: owner.apiKey })).json()) as {
            status: string;
          }
        ).status === 'succeeded',
      { what: 'the prompt to succeed', timeoutMs: 60_000 },
    );
    await creditsAddUp(versionId);
    // Fully usable: another prompt with another key goes through at once.
    expect((await createPrompt(versionId, randomUUID(), 1)).status).toBe(202);
  });
});

describe('Redis frozen mid-request', () => {
  it('a locked upload that ends while Redis is frozen leaves no lock and no key behind once Redis is back', async () => {
    const paymentId = await paidInitPayment(mesh, owner);
    const key = randomUUID();
    const [photo] = await distinctPhotos(1);
    const boundary = `b${randomUUID()}`;
    // An upload the test streams by hand, so Redis can freeze while the request holds the lock.
    const req = http.request(`${mesh.gateway.url}/api/v1/versions/train/${paymentId}?class=man`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${owner.apiKey}`,
        'idempotency-key': key,
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'transfer-encoding': 'chunked',
      },
    });
    const answered = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    req.write(
      `--${boundary}\r\ncontent-disposition: form-data; name="images"; filename="a.jpg"\r\ncontent-type: image/jpeg\r\n\r\n`,
    );
    req.write(photo!.data.subarray(0, 1000));
    await waitFor(async () => (await redis.exists(`lock:payment:${paymentId}`)) === 1, {
      what: 'the upload to hold the payment lock',
    });
    const thaw = freeze([redisPid()]);
    // One photo is too few: the request ends with a refusal while Redis cannot hear its release.
    req.end(Buffer.concat([photo!.data.subarray(1000), Buffer.from(`\r\n--${boundary}--\r\n`)]));
    expect(await answered).toBe(422);
    thaw();
    // The release and the forget were retried: nothing waits for the 60 s deadline to pass.
    await waitFor(async () => (await redis.exists(`lock:payment:${paymentId}`)) === 0, {
      what: 'the lock to be released',
    });
    const idemKey = idempotencyKeyOf(key);
    await waitFor(async () => (await redis.exists(idemKey)) === 0, {
      what: 'the refused request to forget its key',
    });
  });

  it('prompt creation takes no lock and is not blocked by a frozen Redis beyond one command timeout', async () => {
    const versionId = await readyVersion(mesh, owner, 2, model);
    const thaw = freeze([redisPid()]);
    // No key: nothing to record; the rate limiter fails open after its command timeout.
    const res = await mesh.api(`/api/v1/prompts/create/${versionId}`, {
      key: owner.apiKey,
      method: 'POST',
      json: { prompt: 'no lock', num_outputs: 1, width: 256, height: 256 },
    });
    thaw();
    expect(res.status).toBe(202);
    expect(await redis.keys('lock:version:*')).toEqual([]);
  });
});
