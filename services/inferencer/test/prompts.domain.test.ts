/**
 * The inferencer domain against a real Postgres (a fresh clone of the migrated template), the
 * Replicate sandbox over HTTP with signed webhooks, and contract-keeping stand-ins for trainer,
 * billing and imager (test/support/fakes.ts). Races are driven explicitly: webhook deliveries and
 * reconciler passes are started together, not left to timers. The reconciler's loop is not
 * started: a webhook's wake-up of it runs one pass (kept in `woken`, awaited by `wakesIdle`).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AppError,
  createLogger,
  createMetrics,
  createPool,
  createReplicate,
  Errors,
  type Pool,
} from '@atelier/kit';
import {
  createTestDatabase,
  scheduleCheck,
  signedWebhookHeaders,
  waitFor,
  type TestDatabase,
} from '@atelier/infra/testing';
import { startReplicateSandbox, type ReplicateSandbox } from '@atelier/infra/sandbox/replicate';
import { buildInferencerDomain } from '../src/app';
import type { PromptParams } from '../src/domain/prompt.model';
import { FakeCredits, FakeOutputs, FakeVersions } from './support/fakes';
import { sandboxModelVersion } from './support/sandbox-version';

let db: TestDatabase;
let pool: Pool;
let replicate: ReplicateSandbox;
let hooks: Server;
let replicateVersion: string;
let domain: ReturnType<typeof buildInferencerDomain>;
const versions = new FakeVersions();
const credits = new FakeCredits();
const outputs = new FakeOutputs();
const account = randomUUID();

const params = (over: Partial<PromptParams> = {}): PromptParams => ({
  prompt: 'a photo of TOK dog',
  negativePrompt: '',
  numOutputs: 1,
  width: 256,
  height: 256,
  ...over,
});

/** A ready version of `account` with `creditCount` credits. */
function readyVersion(creditCount: number, owner = account): string {
  const id = randomUUID();
  versions.versions.set(id, { accountId: owner, isReady: true, replicateVersion });
  credits.grant(owner, id, creditCount);
  return id;
}

const create = (versionId: string, p: Partial<PromptParams> = {}, waitSeconds = 0) =>
  domain.prompts.create(
    { accountId: account, versionId, promptId: randomUUID(), params: params(p), waitSeconds },
    { deadline: Date.now() + 20_000 },
  );

const rejection = async (promise: Promise<unknown>): Promise<AppError> => {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
};

const finished = (promptId: string) =>
  waitFor(
    async () => {
      const p = await domain.prompts.get(account, promptId);
      return !['starting', 'processing'].includes(p.status) && p;
    },
    { timeoutMs: 15_000, what: `prompt ${promptId} to finish` },
  );

/** Replicate's delivery of a prediction's current state, signed as the sandbox signs. */
function signedWebhook(predictionId: string) {
  const body = JSON.stringify(replicate.prediction(predictionId)!.object);
  const headers = signedWebhookHeaders(replicate.webhookSecret, body);
  return {
    webhookId: headers['webhook-id']!,
    webhookTimestamp: headers['webhook-timestamp']!,
    webhookSignature: headers['webhook-signature']!,
    body: Buffer.from(body),
  };
}

/** Passes the webhooks' wake-ups started; a webhook's success is copied and settled by them. */
const woken = new Set<Promise<unknown>>();
let wakeUps = 0;
async function wakesIdle(): Promise<void> {
  while (woken.size) await Promise.allSettled([...woken]);
}

const makeDue = (promptId: string) => scheduleCheck(pool, 'inferencer.prompts', promptId, 0);

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool(db.url);
  // What the gateway's webhook route does for `?kind=prediction`: hand the raw request to the domain.
  hooks = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      domain.events
        .handle({
          webhookId: String(req.headers['webhook-id'] ?? ''),
          webhookTimestamp: String(req.headers['webhook-timestamp'] ?? ''),
          webhookSignature: String(req.headers['webhook-signature'] ?? ''),
          body: Buffer.concat(chunks),
        })
        .then(
          () => res.writeHead(200).end(),
          () => res.writeHead(503).end(),
        );
    });
  });
  await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
  replicate = await startReplicateSandbox({
    trainingMs: 100,
    predictionMs: 300,
    webhookRetryDelaysMs: [100, 300],
  });
  const trained = await sandboxModelVersion(replicate);
  // As Replicate names it in a training's output; the service must run it by the bare id.
  replicateVersion = `${trained.model}:${trained.version}`;
  domain = buildInferencerDomain({
    pool,
    versions,
    credits,
    outputs,
    replicate: createReplicate({
      token: replicate.token,
      baseUrl: replicate.baseUrl,
      timeoutMs: 10_000,
      publicWebhookUrl: `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/api/v1/webhooks/replicate`,
    }),
    logger: createLogger('inferencer-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    metrics: createMetrics('inferencer-test'),
    config: {
      PREDICTION_TIMEOUT_MS: 60_000,
      PREDICTION_CHECK_INTERVAL_MS: 60_000,
      PREDICTION_CREATE_GRACE_MS: 60_000,
      TRANSFER_TIMEOUT_MS: 10_000,
      RECONCILE_INTERVAL_MS: 60_000,
      MAX_RUNNING_PROMPTS_PER_ACCOUNT: 1000,
      RECONCILE_BATCH: 50,
      RECONCILE_CONCURRENCY: 5,
      PREDICTION_PRICE_PER_SECOND_MICROS: 1_400,
      DUPLICATE_RUN_WINDOW_MS: 60_000,
      // As production: a callback_url must be https to a public address.
      WEBHOOK_ALLOW_PRIVATE: false,
    },
  });
  jest.spyOn(domain.reconciler, 'wake').mockImplementation(() => {
    wakeUps++;
    const pass: Promise<unknown> = domain.reconciler
      .runOnce()
      .catch(() => undefined)
      .finally(() => woken.delete(pass));
    woken.add(pass);
  });
});

afterAll(async () => {
  await wakesIdle();
  await domain?.reconciler.stop();
  await replicate?.stop();
  await new Promise((resolve) => hooks?.close(resolve));
  await pool?.end();
  await db?.drop();
});

afterEach(() => {
  outputs.hold = undefined;
  outputs.failNext = 0;
  replicate.faults.clear();
  credits.latencyMs = 0;
  credits.failNext = undefined;
});

describe('CreatePrompt', () => {
  it('sends every parameter to Replicate and completes through the signed webhook: 4 images at the requested size, 4 credits settled, usage recorded', async () => {
    const versionId = readyVersion(10);
    const { prompt, imagesRemaining } = await create(versionId, {
      numOutputs: 4,
      width: 512,
      height: 384,
      negativePrompt: 'blurry',
      numInferenceSteps: 12,
      guidanceScale: 4.5,
      seed: 7,
    });
    expect(imagesRemaining).toBe(6);
    expect(prompt.status).toBe('starting');

    const record = replicate.prediction(prompt.predictionId!)!;
    expect(record.object.version).toBe(replicateVersion.split(':')[1]);
    expect(record.object.input).toEqual({
      prompt: 'a photo of TOK dog',
      negative_prompt: 'blurry',
      num_outputs: 4,
      aspect_ratio: 'custom',
      width: 512,
      height: 384,
      num_inference_steps: 12,
      guidance_scale: 4.5,
      seed: 7,
    });
    expect(new URL(record.object.webhook!).searchParams.get('kind')).toBe('prediction');
    expect(record.object.webhook_events_filter).toEqual(['completed']);

    const done = await finished(prompt.id);
    expect(done.status).toBe('succeeded');
    expect(done.images).toHaveLength(4);
    for (const [n, image] of done.images.entries()) {
      expect(image).toEqual({
        key: `outputs/${account}/${versionId}/${prompt.id}/${n}.png`,
        width: 512,
        height: 384,
        contentType: 'image/png',
        bytes: expect.any(Number),
      });
      expect(outputs.objects.get(image.key)?.length).toBe(image.bytes);
    }
    expect(done.predictTime).toBeGreaterThan(0);
    expect(done.costMicros).toBe(Math.round(done.predictTime! * 1_400));
    expect(credits.reservations.get(prompt.id)).toEqual(
      expect.objectContaining({ status: 'settled', settled: 4 }),
    );
    expect(credits.remaining(versionId)).toBe(6);
    expect(credits.usage.get(prompt.id)).toEqual({
      accountId: account,
      versionId,
      predictSeconds: done.predictTime,
      costMicros: done.costMicros,
    });
  });

  it('with waitSeconds answers with the finished prompt', async () => {
    const versionId = readyVersion(2);
    const { prompt } = await create(versionId, { numOutputs: 2 }, 10);
    expect(prompt.status).toBe('succeeded');
    expect(prompt.images).toHaveLength(2);
  });

  it("refuses a version that is not ready (version_not_ready), not the caller's (not_found), or short of credits (insufficient_credits with remaining) and leaves no prompt behind", async () => {
    const notReady = randomUUID();
    versions.versions.set(notReady, { accountId: account, isReady: false, replicateVersion: '' });
    expect((await rejection(create(notReady))).code).toBe('version_not_ready');

    const foreign = readyVersion(10, randomUUID());
    expect((await rejection(create(foreign))).code).toBe('not_found');

    const poor = readyVersion(3);
    const short = await rejection(create(poor, { numOutputs: 4 }));
    expect(short.code).toBe('insufficient_credits');
    expect(short.extra).toEqual({ remaining: 3 });
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.prompts WHERE version_id = ANY($1)',
      [[notReady, foreign, poor]],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('refuses a callback_url that is not https to a public address (invalid_argument naming it) before anything is recorded or reserved', async () => {
    const versionId = readyVersion(4);
    const withCallback = (callbackUrl: string) =>
      domain.prompts.create(
        {
          accountId: account,
          versionId,
          promptId: randomUUID(),
          params: params(),
          waitSeconds: 0,
          callbackUrl,
        },
        { deadline: Date.now() + 20_000 },
      );
    for (const [url, detail] of [
      ['http://example.com/', 'callback_url must be https'],
      ['https://10.0.0.5/', 'callback_url must not point at a loopback, private or link-local address'],
    ] as const) {
      const err = await rejection(withCallback(url));
      expect({ url, code: err.code, detail: err.message }).toEqual({ url, code: 'invalid_argument', detail });
    }
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.prompts WHERE version_id = $1',
      [versionId],
    );
    expect(rows[0]!.n).toBe(0);
    expect([...credits.reservations.values()].filter((r) => r.versionId === versionId)).toEqual([]);
    expect(credits.remaining(versionId)).toBe(4);

    // A public https URL is kept, as the rule writes it.
    const { prompt } = await withCallback('https://Hooks.Example.com/cb');
    const stored = await pool.query<{ callback_url: string }>(
      'SELECT callback_url FROM inferencer.prompts WHERE id = $1',
      [prompt.id],
    );
    expect(stored.rows[0]!.callback_url).toBe('https://hooks.example.com/cb');
  });

  it('when Replicate fails to create the prediction: unavailable, every credit released, the prompt failed', async () => {
    const versionId = readyVersion(4);
    replicate.faults.failNextApiCalls({ status: 503, method: 'POST', path: '/v1/predictions', count: 1 });
    const err = await rejection(create(versionId, { numOutputs: 4 }));
    expect(err.code).toBe('unavailable');
    expect(credits.remaining(versionId)).toBe(4);
    const { rows } = await pool.query<{ id: string }>(
      'SELECT id, status FROM inferencer.prompts WHERE version_id = $1',
      [versionId],
    );
    expect(rows).toEqual([{ id: expect.any(String), status: 'failed' }]);
    expect(credits.reservations.get(rows[0]!.id)?.status).toBe('released');
  });

  it('leaves a prompt whose reservation outcome is unknown to the reconciler, which releases it', async () => {
    const versionId = readyVersion(2);
    credits.failNext = { method: 'reserve', error: Errors.timeout('billing'), count: 1 };
    expect((await rejection(create(versionId, { numOutputs: 2 }))).code).toBe('timeout');
    const { rows } = await pool.query<{ id: string }>(
      'SELECT id, status, replicate_prediction_id FROM inferencer.prompts WHERE version_id = $1',
      [versionId],
    );
    expect(rows).toEqual([{ id: expect.any(String), status: 'starting', replicate_prediction_id: null }]);
    await domain.reconciler.runOnce();
    expect((await domain.prompts.get(account, rows[0]!.id)).status).toBe('failed');
    expect(credits.remaining(versionId)).toBe(2);
  });
});

describe('failures and cancel', () => {
  it('a failed prediction releases every reserved credit', async () => {
    const versionId = readyVersion(4);
    replicate.faults.failNextRuns({ kind: 'prediction' });
    const { prompt } = await create(versionId, { numOutputs: 4 });
    expect(credits.remaining(versionId)).toBe(0);
    const done = await finished(prompt.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/CUDA out of memory/);
    expect(done.images).toEqual([]);
    expect(credits.remaining(versionId)).toBe(4);
    expect(credits.reservations.get(prompt.id)?.status).toBe('released');
  });

  it('cancel stops a running prediction at Replicate and releases every credit; a finished prompt answers prompt_finished', async () => {
    const versionId = readyVersion(3);
    const { prompt } = await create(versionId, { numOutputs: 3 });
    const canceled = await domain.prompts.cancel(account, prompt.id);
    expect(canceled.status).toBe('canceled');
    expect(replicate.prediction(prompt.predictionId!)!.object.status).toBe('canceled');
    expect(credits.remaining(versionId)).toBe(3);
    expect((await rejection(domain.prompts.cancel(account, prompt.id))).code).toBe('prompt_finished');
    // Replicate's own "canceled" webhook changes nothing.
    await replicate.webhooksIdle();
    expect((await domain.prompts.get(account, prompt.id)).status).toBe('canceled');
    expect(credits.closings.filter((c) => c.id === prompt.id)).toHaveLength(1);
    expect((await rejection(domain.prompts.cancel(randomUUID(), prompt.id))).code).toBe('not_found');
  });
});

describe('webhooks and the reconciler', () => {
  it('rejects a bad signature and applies each webhook-id once', async () => {
    const versionId = readyVersion(1);
    replicate.faults.dropWebhooks(1);
    const { prompt } = await create(versionId);
    await replicate.settled(prompt.predictionId!);
    const hook = signedWebhook(prompt.predictionId!);
    expect((await rejection(domain.events.handle({ ...hook, webhookSignature: 'v1,AAAA' }))).code).toBe(
      'invalid_signature',
    );
    expect(await domain.events.handle(hook)).toEqual({ applied: true, runId: prompt.predictionId });
    expect(await domain.events.handle(hook)).toEqual({ applied: false, runId: prompt.predictionId });
    await wakesIdle();
    expect((await domain.prompts.get(account, prompt.id)).status).toBe('succeeded');
  });

  it('a settle billing refuses commits nothing of the completion; the next attempt settles it once', async () => {
    const versionId = readyVersion(2);
    replicate.faults.dropWebhooks(1);
    const { prompt } = await create(versionId, { numOutputs: 2 });
    await replicate.settled(prompt.predictionId!);
    // Billing answers slowly, then refuses: the transaction's own statements have run meanwhile.
    credits.latencyMs = 100;
    credits.failNext = { method: 'settle', error: Errors.unavailable('billing'), count: 1 };
    try {
      await makeDue(prompt.id);
      await domain.reconciler.runOnce();
      expect(credits.failNext.count).toBe(0);
    } finally {
      credits.latencyMs = 0;
      credits.failNext = undefined;
    }
    const stored = () =>
      pool
        .query<{ n: number }>(
          'SELECT count(*)::int AS n FROM inferencer.prompt_images WHERE prompt_id = $1',
          [prompt.id],
        )
        .then((r) => (r.rows[0] as { n: number }).n);
    expect(await stored()).toBe(0);
    expect(['starting', 'processing']).toContain((await domain.prompts.get(account, prompt.id)).status);
    expect(credits.closings.filter((c) => c.id === prompt.id)).toEqual([]);

    // The completer's lease runs out; the reconciler's pass then completes the prompt.
    await pool.query('UPDATE inferencer.prompts SET completing_until = NULL WHERE id = $1', [prompt.id]);
    await makeDue(prompt.id);
    await domain.reconciler.runOnce();
    const done = await domain.prompts.get(account, prompt.id);
    expect({ status: done.status, images: done.images.length, stored: await stored() }).toEqual({
      status: 'succeeded',
      images: 2,
      stored: 2,
    });
    expect(credits.closings.filter((c) => c.id === prompt.id)).toEqual([
      { id: prompt.id, status: 'settled', settled: 2 },
    ]);
    expect(credits.usage.has(prompt.id)).toBe(true);
  });

  it('completes a prompt whose webhook never came', async () => {
    const versionId = readyVersion(2);
    replicate.faults.dropWebhooks(1);
    const { prompt } = await create(versionId, { numOutputs: 2 });
    await replicate.settled(prompt.predictionId!);
    await makeDue(prompt.id);
    await domain.reconciler.runOnce();
    const done = await domain.prompts.get(account, prompt.id);
    expect(done.status).toBe('succeeded');
    expect(done.images).toHaveLength(2);
  });

  it('webhook deliveries and reconciler passes completing the same prompt at once settle it once', async () => {
    const versionId = readyVersion(4);
    replicate.faults.dropWebhooks(1);
    const { prompt } = await create(versionId, { numOutputs: 4 });
    await replicate.settled(prompt.predictionId!);
    await makeDue(prompt.id);
    // Slow billing keeps every racer inside its critical section longer.
    credits.latencyMs = 50;
    const transfersBefore = outputs.transfers;
    const results = await Promise.all([
      domain.events.handle(signedWebhook(prompt.predictionId!)),
      domain.reconciler.runOnce(),
      domain.events.handle(signedWebhook(prompt.predictionId!)),
      domain.reconciler.runOnce(),
      domain.events.handle(signedWebhook(prompt.predictionId!)),
    ]);
    await wakesIdle();
    // One racer holds the completion lease and copies; the others step aside.
    expect(outputs.transfers - transfersBefore).toBe(1);
    const webhookApplied = [results[0], results[2], results[4]].filter(
      (r) => (r as { applied: boolean }).applied,
    ).length;
    expect(webhookApplied).toBeLessThanOrEqual(1);
    expect(credits.closings.filter((c) => c.id === prompt.id)).toEqual([
      { id: prompt.id, status: 'settled', settled: 4 },
    ]);
    expect(credits.remaining(versionId)).toBe(0);
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.prompt_images WHERE prompt_id = $1',
      [prompt.id],
    );
    expect(rows[0]!.n).toBe(4);
    expect((await domain.prompts.get(account, prompt.id)).status).toBe('succeeded');
  });

  it('steps aside while another completer holds the lease, and the reconciler finishes once it lapses', async () => {
    const versionId = readyVersion(2);
    replicate.faults.dropWebhooks(1);
    const { prompt } = await create(versionId, { numOutputs: 2 });
    await replicate.settled(prompt.predictionId!);
    // Another replica is copying this prompt's outputs right now.
    await pool.query(
      `UPDATE inferencer.prompts SET completing_until = now() + interval '1 hour' WHERE id = $1`,
      [prompt.id],
    );
    const transfersBefore = outputs.transfers;
    // The webhook records the success; the pass it wakes finds the lease held and steps aside.
    expect(await domain.events.handle(signedWebhook(prompt.predictionId!))).toEqual(
      expect.objectContaining({ applied: true }),
    );
    await wakesIdle();
    expect(outputs.transfers).toBe(transfersBefore);
    expect((await domain.prompts.get(account, prompt.id)).status).not.toBe('succeeded');
    // That replica died: its lease lapses and the reconciler completes the prompt.
    await pool.query(
      `UPDATE inferencer.prompts SET completing_until = now() - interval '1 second' WHERE id = $1`,
      [prompt.id],
    );
    await makeDue(prompt.id);
    await domain.reconciler.runOnce();
    const done = await domain.prompts.get(account, prompt.id);
    expect(done.status).toBe('succeeded');
    expect(done.images).toHaveLength(2);
  });

  it("answers a success's webhook before its outputs are copied: the woken claim loop copies, retries a failed copy, and settles once", async () => {
    const versionId = readyVersion(3);
    replicate.faults.dropWebhooks(1);
    const { prompt } = await create(versionId, { numOutputs: 3 });
    await replicate.settled(prompt.predictionId!);
    // A bucket that hangs, then fails once it answers.
    let release!: () => void;
    outputs.hold = new Promise<void>((resolve) => (release = resolve));
    outputs.failNext = 1;
    const transfersBefore = outputs.transfers;
    const wakeUpsBefore = wakeUps;

    // Answered while the copy it started still hangs: the webhook never waits for the bucket.
    expect(await domain.events.handle(signedWebhook(prompt.predictionId!))).toEqual({
      applied: true,
      runId: prompt.predictionId,
    });
    expect(wakeUps).toBe(wakeUpsBefore + 1);
    await waitFor(() => outputs.transfers === transfersBefore + 1, {
      what: 'the woken pass to start the copy',
    });
    expect((await domain.prompts.get(account, prompt.id)).status).not.toBe('succeeded');
    expect(credits.reservations.get(prompt.id)?.status).toBe('open');

    // The copy fails: the prompt stays unfinished with its credits reserved, due again after its lease.
    release();
    await wakesIdle();
    expect(outputs.transfers).toBe(transfersBefore + 1);
    expect((await domain.prompts.get(account, prompt.id)).status).not.toBe('succeeded');
    expect(credits.reservations.get(prompt.id)?.status).toBe('open');
    // A redelivered webhook changes nothing: the success is already recorded.
    expect(await domain.events.handle(signedWebhook(prompt.predictionId!))).toEqual(
      expect.objectContaining({ applied: false }),
    );

    await makeDue(prompt.id);
    await domain.reconciler.runOnce();
    const done = await domain.prompts.get(account, prompt.id);
    expect(done.status).toBe('succeeded');
    expect(done.images).toHaveLength(3);
    expect(outputs.transfers).toBe(transfersBefore + 2);
    expect(credits.closings.filter((c) => c.id === prompt.id)).toEqual([
      { id: prompt.id, status: 'settled', settled: 3 },
    ]);
    expect(credits.remaining(versionId)).toBe(0);
    // Nothing is left due: a later pass changes nothing.
    await makeDue(prompt.id);
    await domain.reconciler.runOnce();
    expect(credits.closings.filter((c) => c.id === prompt.id)).toHaveLength(1);
  });

  it('fails an overdue prediction, cancels it at Replicate and releases its credits', async () => {
    const versionId = readyVersion(2);
    replicate.faults.dropWebhooks(1);
    const { prompt } = await create(versionId, { numOutputs: 2 });
    await pool.query(
      "UPDATE inferencer.prompts SET deadline_at = now() - interval '1 second', next_check_at = now() WHERE id = $1",
      [prompt.id],
    );
    // Still running at Replicate: the sandbox's run takes 300 ms and the deadline has passed now.
    await domain.reconciler.runOnce();
    const done = await domain.prompts.get(account, prompt.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/did not finish/);
    expect(replicate.prediction(prompt.predictionId!)!.object.status).toBe('canceled');
    expect(credits.remaining(versionId)).toBe(2);
  });

  it('releases the credits of a prompt whose CreatePrompt died before making the prediction', async () => {
    const versionId = readyVersion(3);
    const promptId = randomUUID();
    await credits.reserve(account, versionId, promptId, 3);
    await pool.query(
      `INSERT INTO inferencer.prompts (id, account_id, version_id, prompt, params, num_outputs, deadline_at, next_check_at)
       VALUES ($1, $2, $3, 'x', '{}', 3, now() + interval '1 hour', now() - interval '1 second')`,
      [promptId, account, versionId],
    );
    expect(credits.remaining(versionId)).toBe(0);
    await domain.reconciler.runOnce();
    expect((await domain.prompts.get(account, promptId)).status).toBe('failed');
    expect(credits.remaining(versionId)).toBe(3);
  });
});

describe('concurrency', () => {
  it('30 concurrent prompts on a version with 10 credits never charge more than 10 images nor go below zero', async () => {
    const versionId = readyVersion(10);
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () => create(versionId, { numOutputs: 1 })),
    );
    const accepted = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(accepted).toHaveLength(10);
    expect(refused.every((r) => (r.reason as AppError).code === 'insufficient_credits')).toBe(true);
    expect(credits.lowestRemaining).toBeGreaterThanOrEqual(0);
    for (const r of accepted)
      await finished((r as PromiseFulfilledResult<{ prompt: { id: string } }>).value.prompt.id);
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM inferencer.prompt_images i JOIN inferencer.prompts p ON p.id = i.prompt_id WHERE p.version_id = $1`,
      [versionId],
    );
    expect(rows[0]!.n).toBe(10);
    const settled = [...credits.reservations.values()]
      .filter((r) => r.versionId === versionId)
      .reduce((sum, r) => sum + r.settled, 0);
    expect(settled).toBe(10);
    expect(credits.remaining(versionId)).toBe(0);
  });
});

describe('ListPrompts', () => {
  /** Succeeded prompts written directly, several sharing a created_at to the microsecond. */
  async function seed(versionId: string, n: number, owner = account): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const id = randomUUID();
      ids.push(id);
      // Three prompts per instant, instants one microsecond apart: the cursor must keep both apart.
      const at = `2026-01-01T00:00:00.${String(100000 + Math.floor(i / 3)).padStart(6, '0')}Z`;
      await pool.query(
        `INSERT INTO inferencer.prompts (id, account_id, version_id, status, prompt, params, num_outputs, created_at, completed_at, deadline_at)
         VALUES ($1, $2, $3, 'succeeded', $4, '{"num_outputs": 2}', 2, $5, $5, $5)`,
        [id, owner, versionId, `prompt ${i}`, at],
      );
      await pool.query(
        `INSERT INTO inferencer.prompt_images (prompt_id, position, key, width, height, content_type, bytes)
         VALUES ($1, 0, $2, 256, 256, 'image/png', 100), ($1, 1, $3, 256, 256, 'image/png', 100)`,
        [id, `outputs/${id}/0.png`, `outputs/${id}/1.png`],
      );
    }
    // Unfinished and failed prompts are not listed.
    await pool.query(
      `INSERT INTO inferencer.prompts (id, account_id, version_id, status, prompt, params, num_outputs, deadline_at)
       VALUES ($1, $3, $4, 'failed', 'f', '{}', 1, now()), ($2, $3, $4, 'processing', 'p', '{}', 1, now())`,
      [randomUUID(), randomUUID(), owner, versionId],
    );
    return ids;
  }

  it('pages newest first with a cursor, every prompt exactly once, each page one SQL statement', async () => {
    const versionId = readyVersion(1);
    const ids = await seed(versionId, 11);
    const statements: string[] = [];
    const query = pool.query.bind(pool);
    // pool.query's overloads include the callback form, typed void; the promise form is the one used.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises
    const spy = jest.spyOn(pool, 'query').mockImplementation(((text: string, values?: unknown[]) => {
      statements.push(text);
      return query(text, values);
    }) as typeof pool.query);
    const seen: string[] = [];
    let cursor = '';
    let pages = 0;
    try {
      do {
        statements.length = 0;
        const page = await domain.prompts.list(account, versionId, 4, cursor);
        expect(statements).toHaveLength(1);
        expect(statements[0]).toMatch(/json_agg/);
        pages++;
        for (const p of page.prompts) {
          expect(p.images.map((i) => i.key)).toEqual([`outputs/${p.id}/0.png`, `outputs/${p.id}/1.png`]);
          seen.push(p.id);
        }
        cursor = page.nextCursor;
      } while (cursor);
    } finally {
      spy.mockRestore();
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(11);
    expect(new Set(seen).size).toBe(11);
    // Newest first: the seed's instants ascend with i; within one instant the id decides.
    const { rows } = await pool.query(
      `SELECT id FROM inferencer.prompts WHERE version_id = $1 AND status = 'succeeded' ORDER BY created_at DESC, id DESC`,
      [versionId],
    );
    expect(seen).toEqual(rows.map((r: { id: string }) => r.id));
    expect(new Set(seen)).toEqual(new Set(ids));
  });

  it("answers not_found for a version that is not the caller's, an empty page for its own, invalid_argument for a forged cursor", async () => {
    const stranger = randomUUID();
    const foreign = readyVersion(1, stranger);
    await seed(foreign, 1, stranger);
    expect((await rejection(domain.prompts.list(account, foreign, 10, ''))).code).toBe('not_found');
    const own = readyVersion(1);
    expect(await domain.prompts.list(account, own, 10, '')).toEqual({ prompts: [], nextCursor: '' });
    expect((await rejection(domain.prompts.list(account, own, 10, 'bm9wZQ'))).code).toBe('invalid_cursor');
  });
});

describe('offer and pack runs under the tier cap on prompts at once', () => {
  // V45's seeded pack: three offers, one prompt each.
  const PACK = '9ac00000-0000-4000-8000-000000000001';
  const variables = { background: 'grey', place: 'a park', painter: 'Rembrandt' };

  // An account of its own: other tests' prompts of the shared account may still be running.
  const runner = randomUUID();

  it('refuses a run that does not fit under the cap whole (429 naming the limit), reserving and recording nothing', async () => {
    const versionId = readyVersion(20, runner);
    const err = await rejection(
      domain.offers.runPack({ accountId: runner, packId: PACK, versionId, variables, maxRunning: 2 }),
    );
    expect(err.code).toBe('too_many_running_prompts');
    expect(err.extra).toEqual(expect.objectContaining({ limit: 'prompts_running', max: 2 }));
    expect(credits.remaining(versionId)).toBe(20);
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.runs WHERE version_id = $1',
      [versionId],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('runs every prompt of a run that fits under the cap, asking trainer for the version once', async () => {
    const versionId = readyVersion(20, runner);
    const asked = jest.spyOn(versions, 'getVersion');
    const { run, prompts } = await domain.offers.runPack({
      accountId: runner,
      packId: PACK,
      versionId,
      variables,
      maxRunning: 3,
    });
    const asks = asked.mock.calls.length;
    asked.mockRestore();
    expect(asks).toBe(1);
    expect(prompts).toHaveLength(3);
    expect(prompts.every((p) => ['starting', 'processing', 'succeeded'].includes(p.status))).toBe(true);
    expect(run.priceCredits).toBeGreaterThan(0);
  });
});
