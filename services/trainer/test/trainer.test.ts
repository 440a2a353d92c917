/**
 * Trainer through its gRPC API against the whole mesh: real billing (claims, grants, usage),
 * imager and the test bucket (every training is a TrainVersion upload of real photos), Postgres,
 * the gateway's webhook route and the Replicate sandbox. Trainings here run "forever"
 * (trainingMs: 10 min) and are finished by the test with `replicate.complete`, so every step is
 * observed, never raced.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import {
  AppError,
  createLogger,
  createMetrics,
  currentContext,
  Errors,
  implement,
  loadConfig,
  startGrpcServer,
} from '@atelier/kit';
import { startTrainer, trainerConfigSchema } from '@atelier/trainer';
import { common, imager } from '@atelier/protos';
import { signWebhook } from '@atelier/infra/sandbox/replicate';
import { distinctPhotos, startMesh, testDouble, waitFor, type Mesh } from '@atelier/infra/testing';
import { paidPayment, getPayment, trainerClient, versionRow } from './support';

let mesh: Mesh;
let db: Client;
let photos: Awaited<ReturnType<typeof distinctPhotos>>;
let client: ReturnType<typeof trainerClient>;
let account: { accountId: string; apiKey: string };

beforeAll(async () => {
  mesh = await startMesh({
    replicate: { trainingMs: 600_000 },
    env: { RATE_LIMIT_PER_WINDOW: '10000', RECONCILE_INTERVAL_MS: '200' },
  });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  photos = await distinctPhotos(5, 512);
  client = trainerClient(mesh.trainer.address);
  account = await mesh.createAccount();
});
afterAll(async () => {
  client?.close();
  await db?.end();
  await mesh?.stop();
});
afterEach(() => mesh.replicate.faults.clear());

const billing = () => mesh.gateway.deps.mesh.billing;

/**
 * A training as the gateway starts one: a TrainVersion stream of the header, each photo's
 * file_start and bytes, and the end marker. A refusal (the payment) can end the call before
 * every photo is written: the answer then says why.
 */
async function start(paymentId: string, versionId = randomUUID(), who = account, via = client) {
  const upload = via.trainVersion();
  try {
    await upload.write({
      header: {
        accountId: who.accountId,
        paymentId,
        versionId,
        className: 'dog',
        triggerWord: 'TOK',
        maxRunning: 0,
      },
    });
    for (const [index, photo] of photos.entries()) {
      await upload.write({ fileStart: { index, filename: photo.name, contentType: photo.type } });
      await upload.write({ chunk: photo.data });
    }
    await upload.write({ end: { files: photos.length } });
  } catch {
    // The call already ended: end() answers its error.
  }
  const { version, problems } = await upload.end();
  if (!version) throw new Error(`the photos were rejected: ${JSON.stringify(problems)}`);
  return version;
}

const trainingIdOf = async (versionId: string) => (await versionRow(db, versionId))!.replicate_training_id!;
const getVersion = async (versionId: string) =>
  (await client.getVersion({ accountId: account.accountId, versionId })).version!;
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: unknown) => err as AppError,
  );

describe('TrainVersion', () => {
  it('starts the configured trainer with webhook and filter; webhooks make the version ready and billing grants its credits then', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const version = await start(payment.payment_id);
    // The sandbox may report the run as processing before this answer is read back (a busy machine).
    expect([common.RunStatus.RUN_STATUS_STARTING, common.RunStatus.RUN_STATUS_PROCESSING]).toContain(
      version.status,
    );
    expect(version).toEqual(
      expect.objectContaining({
        isReady: false,
        model: `atelier/v-${version.versionId}`,
        className: 'dog',
        triggerWord: 'TOK',
        paymentId: payment.payment_id,
        imageCount: 5,
      }),
    );

    // The training at Replicate: our destination model (created private), the configured inputs and webhook.
    const trainingId = await trainingIdOf(version.versionId);
    const record = mesh.replicate.training(trainingId)!;
    expect(record.object.model).toBe('ostris/flux-dev-lora-trainer');
    const datasetUrl = (record.body as { input: { input_images: string } }).input.input_images;
    expect(record.body).toEqual(
      expect.objectContaining({
        destination: version.model,
        input: { input_images: datasetUrl, trigger_word: 'TOK', steps: 1000 },
        webhook: `${mesh.env.PUBLIC_WEBHOOK_URL}?kind=training`,
        webhook_events_filter: ['start', 'completed'],
      }),
    );
    // The photos went through imager into the bucket: the training downloads their zip, presigned.
    expect(new URL(datasetUrl).pathname).toMatch(
      new RegExp(`/datasets/${account.accountId}/${version.versionId}\\.zip$`),
    );
    const downloaded = await waitFor(() => mesh.replicate.training(trainingId)!.dataset, {
      what: 'the training to download its dataset',
    });
    expect(downloaded.entries.filter((name) => name.endsWith('.jpg'))).toHaveLength(photos.length);
    expect(mesh.replicate.calls().filter((c) => c.method === 'POST' && c.path === '/v1/models')).toHaveLength(
      1,
    );

    // No credits while it trains: billing grants them when trainer reports the version ready.
    const balance = () =>
      billing().getCreditBalance({ accountId: account.accountId, versionId: version.versionId });
    expect((await balance()).balance).toEqual(expect.objectContaining({ granted: 0, used: 0, remaining: 0 }));
    expect((await getPayment(mesh, account.apiKey, payment.payment_id)).version_id).toBe(version.versionId);

    // Only the webhooks may move this version: the reconciler is told to look much later.
    await db.query(`UPDATE trainer.versions SET next_check_at = now() + interval '1 hour' WHERE id = $1`, [
      version.versionId,
    ]);
    await waitFor(
      async () => (await getVersion(version.versionId)).status === common.RunStatus.RUN_STATUS_PROCESSING,
      { what: 'processing (start webhook)' },
    );
    const done = await mesh.replicate.complete(trainingId);
    const ready = await waitFor(
      async () => {
        const v = await getVersion(version.versionId);
        return v.isReady ? v : undefined;
      },
      { what: 'the version to be ready' },
    );
    const output = (done.object as { output: { version: string } }).output;
    expect(ready).toEqual(
      expect.objectContaining({
        status: common.RunStatus.RUN_STATUS_SUCCEEDED,
        replicateVersion: output.version.split(':')[1],
        error: '',
      }),
    );
    expect(ready.pushedAt).toBeInstanceOf(Date);
    // Reported before pushed_at made it ready: a ready version never shows 0 credits.
    expect((await balance()).balance).toEqual(expect.objectContaining({ granted: 100, remaining: 100 }));
    expect(ready.completedAt).toBeInstanceOf(Date);
    expect(ready.trainingSeconds).toBeGreaterThan(0);

    // Usage recorded once in billing, and the version leaves the reconciler's queue.
    const row = await waitFor(
      async () => {
        const r = await versionRow(db, version.versionId);
        return r?.settled_at ? r : undefined;
      },
      { what: 'the version to be settled' },
    );
    expect(row.cost_micros).toBe(Math.round(row.predict_time! * 1220));
    const usage = await db.query(
      'SELECT predict_seconds, cost_micros::float8 AS cost FROM billing.usage WHERE kind = $1 AND ref_id = $2',
      ['training', version.versionId],
    );
    expect(usage.rows).toEqual([{ predict_seconds: row.predict_time, cost: row.cost_micros }]);
    // Both webhooks (start, completed) were delivered and recorded once each.
    await mesh.replicate.webhooksIdle();
    const hooks = mesh.replicate.deliveries().filter((d) => d.runId === trainingId);
    expect(hooks.map((d) => [d.events, d.status])).toEqual([
      [['start', 'logs'], 'delivered'],
      [['completed'], 'delivered'],
    ]);
    expect(
      (
        await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM trainer.webhook_events WHERE run_id = $1',
          [trainingId],
        )
      ).rows[0]!.n,
    ).toBe(2);
  });

  it('answers what billing says about the payment (402 unpaid, 409 used, 404 foreign) and keeps no version', async () => {
    const before = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM trainer.versions')).rows[0]!
      .n;
    const unpaid = await (
      await mesh.api('/api/v1/payments/create', {
        key: account.apiKey,
        method: 'POST',
        json: { plan_id: 'basic_init' },
      })
    ).json();
    expect(await errorOf(start((unpaid as { payment_id: string }).payment_id))).toEqual(
      expect.objectContaining({ code: 'payment_not_paid' }),
    );

    const used = await paidPayment(mesh, account.apiKey);
    await start(used.payment_id);
    expect(await errorOf(start(used.payment_id))).toEqual(
      expect.objectContaining({ code: 'payment_already_used' }),
    );

    const other = await mesh.createAccount();
    const foreign = await paidPayment(mesh, other.apiKey);
    expect(await errorOf(start(foreign.payment_id))).toEqual(expect.objectContaining({ code: 'not_found' }));
    expect(await errorOf(start('not-a-uuid'))).toEqual(expect.objectContaining({ code: 'malformed_id' }));
    expect(
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM trainer.versions')).rows[0]!.n,
    ).toBe(before + 1);
  });

  it('answers 503 when Replicate fails the create, gives the payment back, and a retry succeeds', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    mesh.replicate.faults.failNextApiCalls({ status: 500, method: 'POST', path: /\/trainings$/ });
    const failedVersion = randomUUID();
    expect(await errorOf(start(payment.payment_id, failedVersion))).toEqual(
      expect.objectContaining({ code: 'unavailable' }),
    );
    expect(await versionRow(db, failedVersion)).toBeUndefined();
    expect((await getPayment(mesh, account.apiKey, payment.payment_id)).version_id).toBeNull();
    // A 5xx on create is not retried (it may have created a run): exactly one attempt reached the fault.
    expect(mesh.replicate.calls().filter((c) => c.fault)).toHaveLength(1);

    const version = await start(payment.payment_id);
    expect(version.status).toBe(common.RunStatus.RUN_STATUS_STARTING);
    expect((await getPayment(mesh, account.apiKey, payment.payment_id)).version_id).toBe(version.versionId);
  });

  it('answers 500, not 404, when Replicate refuses our trainer configuration, and gives the payment back', async () => {
    const misconfigured = await startTrainer(
      loadConfig(trainerConfigSchema, {
        ...mesh.envFor('trainer'),
        GRPC_PORT: '0',
        REPLICATE_TRAINER_VERSION: 'no-such-version',
      }),
    );
    const other = trainerClient(misconfigured.address);
    try {
      const payment = await paidPayment(mesh, account.apiKey);
      const versionId = randomUUID();
      const err = await errorOf(start(payment.payment_id, versionId, account, other));
      expect(err).toEqual(expect.objectContaining({ code: 'internal' }));
      expect(await versionRow(db, versionId)).toBeUndefined();
      expect((await getPayment(mesh, account.apiKey, payment.payment_id)).version_id).toBeNull();
    } finally {
      other.close();
      await misconfigured.stop();
    }
  });

  it('waits out Retry-After when Replicate throttles the create, and creates one training', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const trainingsBefore = mesh.replicate.trainings().length;
    mesh.replicate.faults.failNextApiCalls({
      status: 429,
      retryAfterSeconds: 1,
      count: 2,
      method: 'POST',
      path: /\/trainings$/,
    });
    const version = await start(payment.payment_id);
    expect(version.status).toBe(common.RunStatus.RUN_STATUS_STARTING);
    expect(mesh.replicate.trainings().length).toBe(trainingsBefore + 1);
    const creates = mesh.replicate
      .calls()
      .filter((c) => c.method === 'POST' && c.path.endsWith('/trainings'))
      .slice(-3);
    expect(creates.map((c) => c.status)).toEqual([429, 429, 201]);
    for (let i = 1; i < creates.length; i++)
      expect(Date.parse(creates[i]!.at) - Date.parse(creates[i - 1]!.at)).toBeGreaterThanOrEqual(950);
  });
});

describe('callback_url', () => {
  it('with private destinations not allowed, a URL that is not https to a public address is invalid_argument before the payment is claimed or a photo sent', async () => {
    const strict = await startTrainer(
      loadConfig(trainerConfigSchema, {
        ...mesh.envFor('trainer'),
        GRPC_PORT: '0',
        WEBHOOK_ALLOW_PRIVATE: 'false',
      }),
    );
    const other = trainerClient(strict.address);
    try {
      const payment = await paidPayment(mesh, account.apiKey);
      for (const [callbackUrl, detail] of [
        ['http://example.com/', 'callback_url must be https'],
        ['https://10.0.0.5/', 'callback_url must not point at a loopback, private or link-local address'],
      ] as const) {
        const versionId = randomUUID();
        // The upload: a header naming the URL, then photos the trainer must never read.
        const upload = other.trainVersion();
        const answer = errorOf(upload.response);
        await upload
          .write({
            header: {
              accountId: account.accountId,
              paymentId: payment.payment_id,
              versionId,
              className: 'dog',
              maxRunning: 0,
              callbackUrl,
            },
          })
          .catch(() => undefined);
        await upload
          .write({ fileStart: { index: 0, filename: 'a.jpg', contentType: 'image/jpeg' } })
          .catch(() => undefined);
        await upload.write({ chunk: Buffer.from([0xff, 0xd8, 0xff]) }).catch(() => undefined);
        await upload.end().catch(() => undefined);
        const refused = await answer;
        expect({ code: refused?.code, detail: refused?.message }).toEqual({
          code: 'invalid_argument',
          detail,
        });
        expect(await versionRow(db, versionId)).toBeUndefined();
      }
      // Nothing was asked of billing or imager: no claim (and so no release), no photo streamed.
      const metrics = await (await fetch(`http://127.0.0.1:${strict.metricsPort}/metrics`)).text();
      const calls = metrics
        .split('\n')
        .filter((l) => l.startsWith('atelier_grpc_client_handled_total{'))
        .map((l) => /method="([^"]+)"/.exec(l)?.[1]);
      expect(calls).not.toContain('ClaimInitPayment');
      expect(calls).not.toContain('PackTrainingImages');
      expect(await getPayment(mesh, account.apiKey, payment.payment_id)).toMatchObject({
        status: 'paid',
        version_id: null,
      });
    } finally {
      other.close();
      await strict.stop();
    }
  });
});

describe('Replicate events', () => {
  it('applies each webhook-id once, rejects a bad signature, and ignores unknown trainings', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const version = await start(payment.payment_id);
    const trainingId = await trainingIdOf(version.versionId);
    await mesh.replicate.complete(trainingId);
    await waitFor(async () => (await getVersion(version.versionId)).isReady, { what: 'ready' });
    await mesh.replicate.webhooksIdle();
    const completed = mesh.replicate
      .deliveries()
      .find((d) => d.runId === trainingId && d.events.includes('completed'))!;
    const secret = mesh.replicate.webhookSecret;
    const signed = (id: string, body: string) => {
      const timestamp = Math.floor(Date.now() / 1000);
      return {
        webhookId: id,
        webhookTimestamp: String(timestamp),
        webhookSignature: signWebhook(secret, id, timestamp, body),
        body: Buffer.from(body),
      };
    };

    const handle = mesh.gateway.deps.mesh.trainer.handleReplicateEvent;
    expect(await handle(signed(completed.webhookId, completed.body))).toEqual({
      applied: false,
      runId: trainingId,
    });
    expect(
      (
        await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM trainer.webhook_events WHERE webhook_id = $1',
          [completed.webhookId],
        )
      ).rows[0]!.n,
    ).toBe(1);

    // A new webhook-id that would move the version backwards changes nothing either.
    const stale = JSON.stringify({ ...JSON.parse(completed.body), status: 'processing' });
    expect(await handle(signed(`msg_${randomUUID()}`, stale))).toEqual({ applied: false, runId: trainingId });
    expect((await getVersion(version.versionId)).status).toBe(common.RunStatus.RUN_STATUS_SUCCEEDED);

    const tampered = {
      ...signed(`msg_${randomUUID()}`, completed.body),
      body: Buffer.from(completed.body.replace('succeeded', 'failed')),
    };
    expect(await errorOf(handle(tampered))).toEqual(expect.objectContaining({ code: 'invalid_signature' }));
    const old = signed(`msg_${randomUUID()}`, completed.body);
    const ts = Math.floor(Date.now() / 1000) - 600;
    expect(
      await errorOf(
        handle({
          ...old,
          webhookTimestamp: String(ts),
          webhookSignature: signWebhook(secret, old.webhookId, ts, completed.body),
        }),
      ),
    ).toEqual(expect.objectContaining({ code: 'invalid_signature' }));

    const unknown = JSON.stringify({ ...JSON.parse(completed.body), id: 'r8unknowntraining' });
    expect(await handle(signed(`msg_${randomUUID()}`, unknown))).toEqual({
      applied: false,
      runId: 'r8unknowntraining',
    });
  });
});

describe('CancelTraining', () => {
  it('cancels a running training at Replicate; a finished one is a 409; a foreign one a 404', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const version = await start(payment.payment_id);
    const trainingId = await trainingIdOf(version.versionId);
    const other = await mesh.createAccount();
    expect(
      await errorOf(client.cancelTraining({ accountId: other.accountId, versionId: version.versionId })),
    ).toEqual(expect.objectContaining({ code: 'not_found' }));
    expect(
      await errorOf(client.getVersion({ accountId: other.accountId, versionId: version.versionId })),
    ).toEqual(expect.objectContaining({ code: 'not_found' }));

    const { version: canceled } = await client.cancelTraining({
      accountId: account.accountId,
      versionId: version.versionId,
    });
    expect(canceled).toEqual(
      expect.objectContaining({ status: common.RunStatus.RUN_STATUS_CANCELED, isReady: false }),
    );
    expect(mesh.replicate.training(trainingId)!.object.status).toBe('canceled');
    expect(
      await errorOf(client.cancelTraining({ accountId: account.accountId, versionId: version.versionId })),
    ).toEqual(expect.objectContaining({ code: 'training_finished' }));
    // The `completed` webhook of the cancel arrives later and changes nothing.
    await mesh.replicate.webhooksIdle();
    expect((await getVersion(version.versionId)).status).toBe(common.RunStatus.RUN_STATUS_CANCELED);
  });

  it('cancels a version whose training Replicate no longer knows (404), instead of answering 404 about it', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const version = await start(payment.payment_id);
    await db.query(
      "UPDATE trainer.versions SET replicate_training_id = 'forgotten-by-replicate' WHERE id = $1",
      [version.versionId],
    );
    const { version: canceled } = await client.cancelTraining({
      accountId: account.accountId,
      versionId: version.versionId,
    });
    expect(canceled).toEqual(expect.objectContaining({ status: common.RunStatus.RUN_STATUS_CANCELED }));
  });
});

describe('reconciler', () => {
  it('finishes a version whose webhooks never arrive', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    mesh.replicate.faults.dropWebhooks();
    const version = await start(payment.payment_id);
    const trainingId = await trainingIdOf(version.versionId);
    await mesh.replicate.complete(trainingId);
    const ready = await waitFor(
      async () => {
        const v = await getVersion(version.versionId);
        return v.isReady ? v : undefined;
      },
      { what: 'the reconciler to finish the version' },
    );
    expect(ready.pushedAt).toBeInstanceOf(Date);
    expect(
      mesh.replicate
        .deliveries()
        .filter((d) => d.runId === trainingId)
        .every((d) => d.status === 'dropped'),
    ).toBe(true);
    expect(
      mesh.replicate.calls().some((c) => c.method === 'GET' && c.path === `/v1/trainings/${trainingId}`),
    ).toBe(true);
  });

  it('fails a training past its deadline as timed out and cancels it at Replicate', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const version = await start(payment.payment_id);
    const trainingId = await trainingIdOf(version.versionId);
    await db.query(`UPDATE trainer.versions SET deadline_at = now(), next_check_at = now() WHERE id = $1`, [
      version.versionId,
    ]);
    const failed = await waitFor(
      async () => {
        const v = await getVersion(version.versionId);
        return v.status === common.RunStatus.RUN_STATUS_FAILED ? v : undefined;
      },
      { what: 'the timeout' },
    );
    expect(failed.error).toMatch(/timed out/);
    await waitFor(() => mesh.replicate.training(trainingId)!.object.status === 'canceled', {
      what: 'the cancel at Replicate',
    });
  });

  it('gives the payment back when a start died before its training existed', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const versionId = randomUUID();
    // What a trainer that crashed between claiming and creating the training leaves behind.
    await billing().claimInitPayment({
      accountId: account.accountId,
      paymentId: payment.payment_id,
      versionId,
    });
    await db.query(
      `INSERT INTO trainer.versions (id, account_id, payment_id, class_name, trigger_word, model, dataset_key, image_count, created_at, next_check_at, deadline_at)
       VALUES ($1, $2, $3, 'dog', 'TOK', 'atelier/v-x', 'datasets/x.zip', 5, now() - interval '1 hour', now(), now() + interval '1 hour')`,
      [versionId, account.accountId, payment.payment_id],
    );
    await waitFor(async () => (await versionRow(db, versionId)) === undefined, {
      what: 'the orphan to be removed',
    });
    expect((await getPayment(mesh, account.apiKey, payment.payment_id)).version_id).toBeNull();
    expect((await start(payment.payment_id)).status).toBe(common.RunStatus.RUN_STATUS_STARTING);
  });
});

/**
 * PRODUCT.md: an init payment whose training fails, times out or is canceled is given back and
 * can train again; a refund of a payment whose training still runs cancels that training.
 */
describe('the payment of a training that never becomes ready', () => {
  const paymentVersion = async (paymentId: string) =>
    (await getPayment(mesh, account.apiKey, paymentId)).version_id;
  const waitGivenBack = (paymentId: string) =>
    waitFor(async () => (await paymentVersion(paymentId)) === null, {
      what: `payment ${paymentId} to be given back`,
    });
  const granted = async (versionId: string) =>
    (await billing().getCreditBalance({ accountId: account.accountId, versionId })).balance!.granted;

  it('is given back when Replicate fails the training, and trains again', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const version = await start(payment.payment_id);
    await mesh.replicate.complete(await trainingIdOf(version.versionId), {
      status: 'failed',
      error: 'CUDA out of memory',
    });
    await waitGivenBack(payment.payment_id);
    expect((await getVersion(version.versionId)).status).toBe(common.RunStatus.RUN_STATUS_FAILED);
    expect(await granted(version.versionId)).toBe(0);
    const again = await start(payment.payment_id);
    expect(await paymentVersion(payment.payment_id)).toBe(again.versionId);
  });

  it('is given back when the training times out or the customer cancels it', async () => {
    const timedOut = await paidPayment(mesh, account.apiKey);
    const slow = await start(timedOut.payment_id);
    await db.query(`UPDATE trainer.versions SET deadline_at = now(), next_check_at = now() WHERE id = $1`, [
      slow.versionId,
    ]);
    await waitGivenBack(timedOut.payment_id);
    expect((await getVersion(slow.versionId)).status).toBe(common.RunStatus.RUN_STATUS_FAILED);

    const canceled = await paidPayment(mesh, account.apiKey);
    const version = await start(canceled.payment_id);
    await client.cancelTraining({ accountId: account.accountId, versionId: version.versionId });
    await waitGivenBack(canceled.payment_id);
    expect(await granted(version.versionId)).toBe(0);
    expect((await start(canceled.payment_id)).status).toBe(common.RunStatus.RUN_STATUS_STARTING);
  });

  it('a refund of the payment cancels its running training, which grants nothing', async () => {
    const payment = await paidPayment(mesh, account.apiKey);
    const version = await start(payment.payment_id);
    const trainingId = await trainingIdOf(version.versionId);
    const sessionId = new URL(payment.checkout_url).pathname.split('/').pop()!;
    await mesh.stripe.refund(mesh.stripe.session(sessionId)!.payment_intent as string);
    await waitFor(
      async () => (await getPayment(mesh, account.apiKey, payment.payment_id)).status === 'refunded',
      {
        what: 'the refund',
      },
    );
    await db.query(`UPDATE trainer.versions SET next_check_at = now() WHERE id = $1`, [version.versionId]);
    await waitFor(() => mesh.replicate.training(trainingId)!.object.status === 'canceled', {
      what: 'the training to be canceled at Replicate',
    });
    await waitFor(
      async () => (await getVersion(version.versionId)).status === common.RunStatus.RUN_STATUS_CANCELED,
      { what: 'the version to be canceled' },
    );
    expect(await granted(version.versionId)).toBe(0);
    // A refunded payment is not given back: it stays refunded and bound to what it paid for.
    expect(await paymentVersion(payment.payment_id)).toBe(version.versionId);
  });
});

describe("a failed start's cleanup", () => {
  it("waits IMAGER_TIMEOUT_MS for a frozen imager to delete the dataset, not the deletion jobs' DELETION_CALL_TIMEOUT_MS", async () => {
    // An imager that packs every upload but never answers DeleteDataset (frozen), recording the
    // deadline each delete arrived with.
    const deletes: Array<{ datasetKey: string; receivedAt: number; deadline: number | undefined }> = [];
    const logger = createLogger('test', 'silent');
    const standIn = await startGrpcServer({
      serviceNames: ['imager'],
      host: '127.0.0.1',
      port: 0,
      logger,
      readiness: async () => undefined,
      services: [
        implement(
          imager.ImagerServiceService,
          testDouble<typeof imager.ImagerServiceService>({
            async packTrainingImages(parts) {
              let header: imager.PackHeader | undefined;
              let images = 0;
              for await (const part of parts) {
                header ??= part.header;
                if (part.fileStart) images++;
              }
              return {
                datasetKey: `datasets/${header!.accountId}/${header!.datasetId}.zip`,
                datasetUrl: 'http://127.0.0.1:9/never-read.zip',
                images,
                zipBytes: 0,
                problems: [],
              };
            },
            async deleteDataset(req, ctx) {
              deletes.push({
                datasetKey: req.datasetKey,
                receivedAt: Date.now(),
                deadline: currentContext()?.deadline,
              });
              await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
              throw Errors.timeout('imager (frozen)');
            },
          }),
          { logger, metrics: createMetrics('test-imager') },
        ),
      ],
    });
    const isolated = await startTrainer(
      loadConfig(trainerConfigSchema, {
        ...mesh.envFor('trainer'),
        GRPC_PORT: '0',
        IMAGER_ADDR: standIn.address,
        IMAGER_TIMEOUT_MS: '500',
        DELETION_CALL_TIMEOUT_MS: '60000',
      }),
    );
    const other = trainerClient(isolated.address);
    try {
      const payment = await paidPayment(mesh, account.apiKey);
      const versionId = randomUUID();
      mesh.replicate.faults.failNextApiCalls({ status: 500, method: 'POST', path: /\/trainings$/ });
      // Replicate's failure is the answer: with the deletion jobs' 60 s the call would have timed
      // out at the client's 30 s instead.
      expect(await errorOf(start(payment.payment_id, versionId, account, other))).toEqual(
        expect.objectContaining({ code: 'unavailable' }),
      );
      expect(deletes).toEqual([
        expect.objectContaining({ datasetKey: `datasets/${account.accountId}/${versionId}.zip` }),
      ]);
      expect(deletes[0]!.deadline! - deletes[0]!.receivedAt).toBeLessThanOrEqual(500);
      // Undone as before: no version, the payment given back.
      expect(await versionRow(db, versionId)).toBeUndefined();
      expect((await getPayment(mesh, account.apiKey, payment.payment_id)).version_id).toBeNull();
    } finally {
      other.close();
      await isolated.stop();
      await standIn.shutdown(100);
    }
  });
});
