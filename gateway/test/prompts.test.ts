/**
 * Prompts end to end: HTTP through the gateway, the whole in-process mesh (billing, imager,
 * trainer, inferencer), the Replicate and Stripe sandboxes, real Postgres, Redis and bucket.
 *
 * A ready version is the shared fixture's (infra/testing readyVersion): a paid init payment of a
 * plan granting the credits the test needs, claimed and reported ready to billing as trainer
 * reports it, and trainer's row written directly, pointing at a model version the Replicate
 * sandbox really has (a sandbox training made with the official client pushed it), so
 * predictions run on it. Running a whole training per test would only slow this file down;
 * trainer's own tests cover that path.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import sharp from 'sharp';
import { currentContext } from '@atelier/kit';
import {
  insertVersionRow,
  readyVersion as readyVersionOf,
  scheduleCheck,
  startMesh,
  waitFor,
  type Mesh,
  postReplicateWebhook,
} from '@atelier/infra/testing';
import { sandboxModelVersion } from '../../services/inferencer/test/support/sandbox-version';

let mesh: Mesh;
let db: Client;
let owner: { accountId: string; apiKey: string };
let model: { model: string; version: string; trainingId: string };

interface PromptJson {
  prompt_id: string;
  version_id: string;
  status: string;
  prompt: string;
  negative_prompt: string;
  params: Record<string, unknown>;
  images: Array<{ url: string; width: number; height: number; content_type: string }>;
  created_at: string;
  completed_at: string | null;
  predict_time: number | null;
  error: string | null;
}

beforeAll(async () => {
  mesh = await startMesh({
    env: {
      RATE_LIMIT_PER_WINDOW: '100000',
      AUTH_CACHE_MS: '60000',
      PREDICTION_CHECK_INTERVAL_MS: '300',
      // Prompts here race for credits, not for the tier's running cap (tiers.test.ts covers that).
      TIER_LIMITS: JSON.stringify({ free: { promptsRunning: 1000 }, standard: { promptsRunning: 1000 } }),
    },
    // Long enough for a cancel to reach a running prediction, short enough for 30 of them.
    replicate: { trainingMs: 100, predictionMs: 1_000 },
  });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  owner = await mesh.createAccount();
  model = await sandboxModelVersion(mesh.replicate);
});
afterAll(async () => {
  await db?.end();
  await mesh?.stop();
});
afterEach(() => mesh.replicate.faults.clear());

const readyVersion = (account: { accountId: string; apiKey: string }, credits: number) =>
  readyVersionOf(mesh, account, credits, model);

const createPrompt = (
  key: string,
  versionId: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) => mesh.api(`/api/v1/prompts/create/${versionId}`, { key, method: 'POST', json: body, headers });

const getPrompt = async (key: string, promptId: string): Promise<PromptJson> => {
  const res = await mesh.api(`/api/v1/prompts/${promptId}`, { key });
  expect(res.status).toBe(200);
  return (await res.json()) as PromptJson;
};

const finished = (key: string, promptId: string, timeoutMs = 20_000) =>
  waitFor(
    async () => {
      const p = await getPrompt(key, promptId);
      return ['succeeded', 'failed', 'canceled'].includes(p.status) && p;
    },
    { timeoutMs, what: `prompt ${promptId} to finish` },
  );

const remaining = async (key: string, versionId: string): Promise<number> => {
  const res = await mesh.api(`/api/v1/versions/info/${versionId}`, { key });
  expect(res.status).toBe(200);
  return ((await res.json()) as { images: { remaining: number } }).images.remaining;
};

const predictionOf = async (promptId: string): Promise<string> =>
  waitFor(
    async () =>
      (
        await db.query<{ id: string }>(
          'SELECT replicate_prediction_id AS id FROM inferencer.prompts WHERE id = $1',
          [promptId],
        )
      ).rows[0]?.id,
    { what: `prompt ${promptId} to have a prediction` },
  );

const reservation = async (promptId: string) =>
  (
    await db.query<{ amount: number; status: string; settled: number }>(
      'SELECT amount, status, settled FROM billing.credit_reservations WHERE id = $1',
      [promptId],
    )
  ).rows[0];

describe('POST /api/v1/prompts/create', () => {
  it('4 outputs: every parameter reaches Replicate, the images land in our bucket at the requested size, images_remaining drops by 4, the listing survives the sandbox purging its outputs', async () => {
    const versionId = await readyVersion(owner, 10);
    const text = `a photo of TOK dog on the moon ${randomUUID()}`;
    const res = await createPrompt(owner.apiKey, versionId, {
      prompt: text,
      negative_prompt: 'blurry, watermark',
      num_outputs: 4,
      width: 512,
      height: 384,
      num_inference_steps: 12,
      guidance_scale: 4.5,
      seed: 1234,
    });
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { prompt_id: string; status: string; images_remaining: number };
    expect(accepted).toEqual({
      prompt_id: expect.any(String),
      status: 'starting',
      images_remaining: 6,
    });

    const done = await finished(owner.apiKey, accepted.prompt_id);
    expect(done).toEqual(
      expect.objectContaining({
        status: 'succeeded',
        version_id: versionId,
        prompt: text,
        negative_prompt: 'blurry, watermark',
        error: null,
        predict_time: expect.any(Number),
      }),
    );
    expect(done.params).toEqual({
      num_outputs: 4,
      width: 512,
      height: 384,
      num_inference_steps: 12,
      guidance_scale: 4.5,
      seed: 1234,
    });

    const prediction = mesh.replicate.prediction(await predictionOf(accepted.prompt_id))!;
    expect(prediction.object.version).toBe(model.version);
    expect(prediction.object.input).toEqual({
      prompt: text,
      negative_prompt: 'blurry, watermark',
      num_outputs: 4,
      aspect_ratio: 'custom',
      width: 512,
      height: 384,
      num_inference_steps: 12,
      guidance_scale: 4.5,
      seed: 1234,
    });

    const download = async (url: string) => {
      // Our bucket, not Replicate's file server.
      expect(url.startsWith(mesh.replicate.url)).toBe(false);
      const image = await fetch(url);
      expect(image.status).toBe(200);
      return sharp(Buffer.from(await image.arrayBuffer())).metadata();
    };
    expect(done.images).toHaveLength(4);
    for (const image of done.images) {
      expect(image).toEqual(expect.objectContaining({ width: 512, height: 384, content_type: 'image/png' }));
      expect(await download(image.url)).toEqual(
        expect.objectContaining({ width: 512, height: 384, format: 'png' }),
      );
    }
    expect(await remaining(owner.apiKey, versionId)).toBe(6);
    expect(await reservation(accepted.prompt_id)).toEqual({ amount: 4, status: 'settled', settled: 4 });
    const usage = await db.query(
      'SELECT predict_seconds, cost_micros::int AS cost FROM billing.usage WHERE kind = $1 AND ref_id = $2',
      ['prediction', accepted.prompt_id],
    );
    expect(usage.rows).toEqual([{ predict_seconds: done.predict_time, cost: expect.any(Number) }]);

    // Replicate deletes its outputs; ours stay.
    mesh.replicate.faults.expireOutputs();
    expect((await fetch(prediction.object.output![0]!)).status).toBe(404);
    const list = await mesh.api(`/api/v1/prompts/list/${versionId}`, { key: owner.apiKey });
    expect(list.status).toBe(200);
    const page = (await list.json()) as { prompts: PromptJson[]; next_cursor: string | null };
    expect(page.next_cursor).toBeNull();
    expect(page.prompts.map((p) => p.prompt_id)).toEqual([accepted.prompt_id]);
    expect(page.prompts[0]!.images).toHaveLength(4);
    for (const image of page.prompts[0]!.images)
      expect(await download(image.url)).toEqual(expect.objectContaining({ width: 512, height: 384 }));
  });

  it('Prefer: wait=N answers 200 with the finished prompt', async () => {
    const versionId = await readyVersion(owner, 2);
    const res = await createPrompt(
      owner.apiKey,
      versionId,
      { prompt: 'a TOK dog', num_outputs: 2, width: 256, height: 256 },
      { prefer: 'wait=30' },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as PromptJson;
    expect(body.status).toBe('succeeded');
    expect(body.images).toHaveLength(2);
  });

  it("answers 409 for a version that is not ready, 402 with the remaining count when credits are short, 404 for another account's version", async () => {
    // Trainer's row of a training still running (no pushed version yet).
    const notReady = randomUUID();
    await insertVersionRow(db, {
      id: notReady,
      account_id: owner.accountId,
      payment_id: randomUUID(),
      status: 'processing',
      model: model.model,
      replicate_training_id: `sandbox_${randomUUID()}`,
      started_at: new Date(),
    });
    const conflict = await createPrompt(owner.apiKey, notReady, { prompt: 'x', num_outputs: 1 });
    expect(conflict.status).toBe(409);

    const poor = await readyVersion(owner, 3);
    const short = await createPrompt(owner.apiKey, poor, { prompt: 'x', num_outputs: 4 });
    expect(short.status).toBe(402);
    expect(await short.json()).toEqual(expect.objectContaining({ status: 402, remaining: 3 }));
    expect(await remaining(owner.apiKey, poor)).toBe(3);

    const stranger = await mesh.createAccount();
    const foreign = await createPrompt(stranger.apiKey, poor, { prompt: 'x', num_outputs: 1 });
    expect(foreign.status).toBe(404);
    const foreignList = await mesh.api(`/api/v1/prompts/list/${poor}`, { key: stranger.apiKey });
    expect(foreignList.status).toBe(404);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.prompts WHERE version_id = ANY($1)',
      [[notReady, poor]],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('answers 400 naming callback_url for a URL callbacks may not go to, reserving and recording nothing', async () => {
    const versionId = await readyVersion(owner, 2);
    // The test mesh allows http and private addresses (WEBHOOK_ALLOW_PRIVATE): these are refused anyway.
    for (const [url, detail] of [
      ['https://user:pw@hooks.example.com/', 'callback_url must not carry credentials'],
      ['ftp://hooks.example.com/', 'callback_url must be https'],
    ] as const) {
      const res = await createPrompt(owner.apiKey, versionId, {
        prompt: 'x',
        num_outputs: 1,
        callback_url: url,
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await res.json()).toEqual(
        expect.objectContaining({ type: expect.stringMatching(/\/invalid-argument$/), detail }),
      );
    }
    expect(await remaining(owner.apiKey, versionId)).toBe(2);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.prompts WHERE version_id = $1',
      [versionId],
    );
    expect(rows[0]!.n).toBe(0);
  });
});

describe('failure and cancel', () => {
  it('a failed prediction releases every reserved credit', async () => {
    const versionId = await readyVersion(owner, 4);
    mesh.replicate.faults.failNextRuns({ kind: 'prediction' });
    const res = await createPrompt(owner.apiKey, versionId, { prompt: 'x', num_outputs: 4 });
    expect(res.status).toBe(202);
    const { prompt_id, images_remaining } = (await res.json()) as {
      prompt_id: string;
      images_remaining: number;
    };
    expect(images_remaining).toBe(0);
    const done = await finished(owner.apiKey, prompt_id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/CUDA out of memory/);
    expect(await remaining(owner.apiKey, versionId)).toBe(4);
    expect(await reservation(prompt_id)).toEqual({ amount: 4, status: 'released', settled: 0 });
  });

  it('a canceled prompt releases every reserved credit; canceling it again is 409', async () => {
    const versionId = await readyVersion(owner, 4);
    const res = await createPrompt(owner.apiKey, versionId, { prompt: 'x', num_outputs: 4 });
    const { prompt_id } = (await res.json()) as { prompt_id: string };
    const canceled = await mesh.api(`/api/v1/prompts/${prompt_id}/cancel`, {
      key: owner.apiKey,
      method: 'POST',
    });
    expect(canceled.status).toBe(200);
    expect(((await canceled.json()) as PromptJson).status).toBe('canceled');
    expect(mesh.replicate.prediction(await predictionOf(prompt_id))!.object.status).toBe('canceled');
    expect(await remaining(owner.apiKey, versionId)).toBe(4);
    expect(await reservation(prompt_id)).toEqual({ amount: 4, status: 'released', settled: 0 });
    expect(
      (await mesh.api(`/api/v1/prompts/${prompt_id}/cancel`, { key: owner.apiKey, method: 'POST' })).status,
    ).toBe(409);
    const stranger = await mesh.createAccount();
    expect((await mesh.api(`/api/v1/prompts/${prompt_id}`, { key: stranger.apiKey })).status).toBe(404);
  });
});

describe('concurrency', () => {
  it('30 concurrent prompts on a version with 10 credits: never more than 10 images charged, the balance never below zero', async () => {
    const versionId = await readyVersion(owner, 10);
    // Through the gateway: no lock; the account's cap on prompts running at once refuses the rest (429).
    const responses = await Promise.all(
      Array.from({ length: 30 }, () =>
        createPrompt(owner.apiKey, versionId, { prompt: 'burst', num_outputs: 1, width: 256, height: 256 }),
      ),
    );
    const byStatus = (s: number) => responses.filter((r) => r.status === s).length;
    expect(byStatus(202) + byStatus(402) + byStatus(429)).toBe(30);
    expect(byStatus(202)).toBeGreaterThanOrEqual(1);
    const accepted: string[] = [];
    for (const r of responses.filter((x) => x.status === 202)) {
      const body = (await r.json()) as { prompt_id: string; images_remaining: number };
      expect(body.images_remaining).toBeGreaterThanOrEqual(0);
      accepted.push(body.prompt_id);
    }
    // Straight to inferencer with a cap that allows all: 30 at once race for the credits in billing.
    const direct = await Promise.allSettled(
      Array.from({ length: 30 }, () =>
        mesh.gateway.deps.mesh.inferencer.createPrompt({
          accountId: owner.accountId,
          versionId,
          promptId: randomUUID(),
          params: { prompt: 'burst', negativePrompt: '', numOutputs: 1, width: 256, height: 256 },
          waitSeconds: 0,
          maxRunning: 1000,
        }),
      ),
    );
    for (const r of direct) {
      if (r.status === 'fulfilled') accepted.push(r.value.prompt!.promptId);
      else expect((r.reason as { code: string }).code).toBe('insufficient_credits');
    }
    expect(accepted).toHaveLength(10);
    for (const id of accepted) expect((await finished(owner.apiKey, id, 30_000)).status).toBe('succeeded');

    const images = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.prompt_images i JOIN inferencer.prompts p ON p.id = i.prompt_id WHERE p.version_id = $1',
      [versionId],
    );
    expect(images.rows[0]!.n).toBe(10);
    const balance = await db.query(
      'SELECT granted, used FROM billing.credit_balances WHERE version_id = $1',
      [versionId],
    );
    expect(balance.rows).toEqual([{ granted: 10, used: 10 }]);
    // Replaying the ledger: `used` never passed `granted` at any point.
    const ledger = await db.query<{ granted_delta: number; used_delta: number; reason: string }>(
      'SELECT granted_delta, used_delta, reason FROM billing.credit_ledger WHERE version_id = $1 ORDER BY id',
      [versionId],
    );
    let granted = 0;
    let used = 0;
    for (const row of ledger.rows) {
      granted += row.granted_delta;
      used += row.used_delta;
      expect(granted - used).toBeGreaterThanOrEqual(0);
    }
    expect(ledger.rows.filter((r) => r.reason === 'reserve')).toHaveLength(10);
    expect(await remaining(owner.apiKey, versionId)).toBe(0);
  });

  it('the webhook and the reconciler completing the same prompt at once settle it once', async () => {
    const versionId = await readyVersion(owner, 4);
    mesh.replicate.faults.dropWebhooks(1);
    const res = await createPrompt(owner.apiKey, versionId, {
      prompt: 'race',
      num_outputs: 4,
      width: 256,
      height: 256,
    });
    const { prompt_id } = (await res.json()) as { prompt_id: string };
    const predictionId = await predictionOf(prompt_id);
    const record = await mesh.replicate.settled(predictionId);
    expect(record.object.status).toBe('succeeded');
    const body = JSON.stringify(record.object);
    const deliver = () => postReplicateWebhook(mesh, 'prediction', body);
    // Due for the reconciler (it passes every 500 ms) while deliveries keep arriving until one of them finishes it.
    await scheduleCheck(db, 'inferencer.prompts', prompt_id, 0);
    await waitFor(
      async () => {
        await Promise.all([deliver(), deliver(), deliver()]);
        return (await getPrompt(owner.apiKey, prompt_id)).status === 'succeeded';
      },
      { timeoutMs: 15_000, intervalMs: 0, what: 'the prompt to succeed' },
    );
    const settles = await db.query(
      "SELECT used_delta FROM billing.credit_ledger WHERE reservation_id = $1 AND reason IN ('settle', 'release')",
      [prompt_id],
    );
    expect(settles.rows).toEqual([{ used_delta: 0 }]);
    expect(await reservation(prompt_id)).toEqual({ amount: 4, status: 'settled', settled: 4 });
    const images = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.prompt_images WHERE prompt_id = $1',
      [prompt_id],
    );
    expect(images.rows[0]!.n).toBe(4);
    const usage = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM billing.usage WHERE kind = 'prediction' AND ref_id = $1",
      [prompt_id],
    );
    expect(usage.rows[0]!.n).toBe(1);
    expect(await remaining(owner.apiKey, versionId)).toBe(0);
  });
});

describe('GET /api/v1/prompts/list', () => {
  it('pages newest first with a cursor, returning every prompt exactly once, each page one SQL statement', async () => {
    const versionId = await readyVersion(owner, 5);
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await createPrompt(owner.apiKey, versionId, {
        prompt: `page ${i}`,
        num_outputs: 1,
        width: 256,
        height: 256,
      });
      expect(res.status).toBe(202);
      created.push(((await res.json()) as { prompt_id: string }).prompt_id);
    }
    for (const id of created) await finished(owner.apiKey, id);

    // Every SQL statement of the listing's request: the mesh runs in this process, and the request
    // id travels from the gateway into each service's async context.
    const statements: Array<{ requestId?: string; text: string }> = [];
    const proto = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    proto.query = function (this: unknown, ...args: unknown[]) {
      const config = args[0] as string | { text?: string };
      statements.push({
        requestId: currentContext()?.requestId,
        text: typeof config === 'string' ? config : (config?.text ?? ''),
      });
      return original.apply(this, args);
    };
    const seen: string[] = [];
    try {
      let cursor: string | null = null;
      let pages = 0;
      do {
        const requestId = `list-${randomUUID()}`;
        const qs: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2';
        const res = await mesh.api(`/api/v1/prompts/list/${versionId}${qs}`, {
          key: owner.apiKey,
          headers: { 'x-request-id': requestId },
        });
        expect(res.status).toBe(200);
        const page = (await res.json()) as { prompts: PromptJson[]; next_cursor: string | null };
        const mine = statements.filter((s) => s.requestId === requestId && /\binferencer\./.test(s.text));
        expect(mine).toHaveLength(1);
        expect(mine[0]!.text).toMatch(/json_agg/);
        for (const p of page.prompts) {
          expect(p.images).toHaveLength(1);
          seen.push(p.prompt_id);
        }
        cursor = page.next_cursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
    } finally {
      proto.query = original;
    }
    expect(seen).toEqual([...created].reverse());
  });
});
