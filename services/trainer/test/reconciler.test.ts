/**
 * Two trainer instances on one database, webhooks dropped: the reconcilers share the due versions
 * through FOR UPDATE SKIP LOCKED, and every version is checked at Replicate and moved exactly once.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createReplicateClient, loadConfig, type RunningService } from '@atelier/kit';
import { startTrainer, trainerConfigSchema } from '@atelier/trainer';
import { startMesh, waitFor, type Mesh } from '@atelier/infra/testing';
import { startDatasetServer } from './support';

const N = 20;
let mesh: Mesh;
let second: RunningService;
let db: Client;
let dataset: Awaited<ReturnType<typeof startDatasetServer>>;

beforeAll(async () => {
  // Small batches and a short interval, so both instances are claiming while the other works.
  mesh = await startMesh({
    replicate: { trainingMs: 600_000 },
    env: { RECONCILE_INTERVAL_MS: '100', RECONCILE_BATCH: '3', RECONCILE_CONCURRENCY: '2' },
  });
  second = await startTrainer(loadConfig(trainerConfigSchema, { ...mesh.envFor('trainer'), GRPC_PORT: '0' }));
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  dataset = await startDatasetServer();
});
afterAll(async () => {
  await second?.stop();
  await dataset?.close();
  await db?.end();
  await mesh?.stop();
});

/** Sum of one metric's samples whose labels include `labels`, scraped from an instance's /metrics. */
async function metric(svc: RunningService, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${svc.metricsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

it('two instances process every due version once between them', async () => {
  const { accountId } = await mesh.createAccount();
  const replicate = createReplicateClient({ token: mesh.replicate.token, baseUrl: mesh.replicate.baseUrl });
  mesh.replicate.faults.dropWebhooks();

  // N finished trainings at Replicate whose outcome trainer has not heard of.
  const versions: Array<{ id: string; trainingId: string }> = [];
  for (let i = 0; i < N; i++) {
    const id = randomUUID();
    await replicate.models.create('atelier', `v-${id}`, { visibility: 'private', hardware: 'gpu-t4' });
    const training = await replicate.trainings.create(
      'ostris',
      'flux-dev-lora-trainer',
      '26dce37af90b9d997eeb970d92e47de3064d46c300504ae376c75bef6a9022d2',
      {
        destination: `atelier/v-${id}`,
        input: { input_images: dataset.url, trigger_word: 'TOK' },
      },
    );
    versions.push({ id, trainingId: training.id });
  }
  await Promise.all(versions.map((v) => mesh.replicate.complete(v.trainingId)));

  // Their rows, held back until all exist, then due at once for both reconcilers.
  for (const v of versions) {
    await db.query(
      `INSERT INTO trainer.versions (id, account_id, payment_id, class_name, trigger_word, model, replicate_training_id, dataset_key, image_count,
                                     next_check_at, deadline_at)
       VALUES ($1, $2, $3, 'dog', 'TOK', $4, $5, 'datasets/x.zip', 5, now() + interval '1 hour', now() + interval '1 hour')`,
      [v.id, accountId, randomUUID(), `atelier/v-${v.id}`, v.trainingId],
    );
  }
  await db.query(`UPDATE trainer.versions SET next_check_at = now() WHERE id = ANY($1)`, [
    versions.map((v) => v.id),
  ]);

  await waitFor(
    async () =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM trainer.versions WHERE id = ANY($1) AND settled_at IS NOT NULL`,
          [versions.map((v) => v.id)],
        )
      ).rows[0]!.n === N,
    { timeoutMs: 20_000, what: 'every version to be reconciled' },
  );
  const { rows } = await db.query(
    `SELECT status, pushed_at IS NOT NULL AS pushed FROM trainer.versions WHERE id = ANY($1)`,
    [versions.map((v) => v.id)],
  );
  expect(rows).toEqual(Array(N).fill({ status: 'succeeded', pushed: true }));

  // Each training was asked about once, by one instance: after that it was finished and settled.
  const polls = mesh.replicate
    .calls()
    .filter((c) => c.method === 'GET' && c.path.startsWith('/v1/trainings/'));
  for (const v of versions)
    expect(polls.filter((c) => c.path === `/v1/trainings/${v.trainingId}`)).toHaveLength(1);

  // Each transition happened once across both instances, and both did part of the work.
  const [first, other] = [mesh.trainer, second];
  expect(
    (await metric(first, 'atelier_trainings_total', 'status="succeeded"')) +
      (await metric(other, 'atelier_trainings_total', 'status="succeeded"')),
  ).toBe(N);
  expect(await metric(first, 'atelier_claim_loop_items_total', 'loop="training-reconciler"')).toBeGreaterThan(
    0,
  );
  expect(await metric(other, 'atelier_claim_loop_items_total', 'loop="training-reconciler"')).toBeGreaterThan(
    0,
  );
  // And the usage of each version reached billing once.
  const usage = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM billing.usage WHERE kind = 'training' AND ref_id = ANY($1)`,
    [versions.map((v) => v.id)],
  );
  expect(usage.rows[0]!.n).toBe(N);
});
