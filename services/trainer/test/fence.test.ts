/**
 * Trainer gives a payment back (billing's ReleaseInitPayment, or ReportTrainingOutcome `failed`)
 * only after the version row's terminal status has committed under its row lock: otherwise a
 * racer (a late start, a webhook, another replica) can still move the row on while the
 * payment is already free to train again. Trainer's domain against a real Postgres, with a
 * billing stand-in that looks at the row from its own connection (so it sees only what has
 * committed) whenever it is asked to give a payment back, and that holds each payment for one
 * version at a time as billing does.
 */
import { randomUUID } from 'node:crypto';
import {
  createLogger,
  createMetrics,
  createPool,
  createStore,
  type ClaimLoop,
  type Pool,
} from '@atelier/kit';
import { createTestDatabase, type TestDatabase } from '@atelier/infra/testing';
import { trainerRepositories, type Store } from '../src/repositories';
import type { BillingPort, ReplicatePort, ReplicateTraining, TrainingOutcome } from '../src/domain/ports';
import { createVersionReconciler } from '../src/domain/version.job';
import { VersionTransitions } from '../src/domain/version-transition.service';

interface GiveBack {
  via: 'release' | 'report_failed';
  versionId: string;
  /** The row as committed when billing was asked. */
  committed: { status: string; replicate_training_id: string | null } | undefined;
  released: boolean;
}

class FenceCheckingBilling implements BillingPort {
  /** payment → the version holding it. */
  readonly holders = new Map<string, string>();
  readonly giveBacks: GiveBack[] = [];
  /** Runs while billing handles a give-back, before it answers: a racer acting at that moment. */
  during: (() => Promise<void>) | undefined;

  constructor(private readonly observer: Pool) {}

  private async giveBack(via: GiveBack['via'], paymentId: string, versionId: string): Promise<boolean> {
    const { rows } = await this.observer.query<GiveBack['committed'] & object>(
      'SELECT status, replicate_training_id FROM trainer.versions WHERE id = $1',
      [versionId],
    );
    await this.during?.();
    const released = this.holders.get(paymentId) === versionId;
    if (released) this.holders.delete(paymentId);
    this.giveBacks.push({ via, versionId, committed: rows[0], released });
    return released;
  }

  async claimInitPayment(_accountId: string, paymentId: string, versionId: string) {
    this.holders.set(paymentId, versionId);
    return { minImages: 5, maxImages: 30 };
  }
  releaseInitPayment(paymentId: string, versionId: string) {
    return this.giveBack('release', paymentId, versionId);
  }
  async reportOutcome(v: { paymentId: string; versionId: string }, outcome: TrainingOutcome) {
    if (outcome === 'failed') await this.giveBack('report_failed', v.paymentId, v.versionId);
    return { keepTraining: true };
  }
  async forfeitCredits() {}
  async eraseAccount() {}
  async recordUsage() {}
}

/** Replicate as far as these races need it: every training has failed. */
const failedAtReplicate: ReplicatePort = {
  ensureModel: async () => undefined,
  createTraining: () => Promise.reject(new Error('not in this test')),
  getTraining: async (id): Promise<ReplicateTraining> => ({
    id,
    status: 'failed',
    error: 'CUDA out of memory',
    completedAt: new Date(),
    predictTime: 12,
  }),
  cancelTraining: async (id): Promise<ReplicateTraining> => ({ id, status: 'canceled' }),
  latestVersion: async () => null,
  deleteModel: async () => 'deleted',
};

let tdb: TestDatabase;
let pool: Pool;
let observer: Pool;
let store: Store;
let billing: FenceCheckingBilling;
const logger = createLogger('trainer-fence-test', process.env.TEST_LOG_LEVEL ?? 'silent');
const metrics = createMetrics('trainer-fence-test');

const transitions = () =>
  new VersionTransitions({
    store,
    billing,
    replicate: failedAtReplicate,
    metrics: metrics.business,
    logger,
    pricePerSecondMicros: 1_000,
    pushPatienceMs: 60_000,
    view: (row) => ({ id: row.id, status: row.status }),
  });

/** One trainer replica's reconciler on the shared database (each with its own transitions). */
const replica = (): ClaimLoop =>
  createVersionReconciler(
    { store, billing, replicate: failedAtReplicate, transitions: transitions(), metrics, logger },
    {
      intervalMs: 60_000,
      maxGapMs: 60_000,
      batch: 10,
      concurrency: 2,
      timeoutMs: 3_600_000,
      startGraceMs: 60_000,
    },
  );

/** A version of a claimed payment, as a start leaves it; due for the reconcilers now. */
async function version(o: { status: string; trainingId: string | null; ageMs: number }) {
  const id = randomUUID();
  const paymentId = randomUUID();
  await billing.claimInitPayment(randomUUID(), paymentId, id);
  await pool.query(
    `INSERT INTO trainer.versions (id, account_id, payment_id, status, class_name, trigger_word, model, replicate_training_id,
                                   dataset_key, image_count, created_at, next_check_at, deadline_at)
     VALUES ($1, $2, $3, $4, 'dog', 'TOK', $5, $6, 'datasets/x.zip', 5,
             now() - $7 * interval '1 millisecond', now(), now() + interval '1 hour')`,
    [id, randomUUID(), paymentId, o.status, `atelier/v-${id}`, o.trainingId, o.ageMs],
  );
  return { id, paymentId };
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  pool = createPool(tdb.url);
  observer = createPool(tdb.url);
  store = createStore(pool, trainerRepositories);
});
beforeEach(() => {
  billing = new FenceCheckingBilling(observer);
});
afterAll(async () => {
  await pool?.end();
  await observer?.end();
  await tdb?.drop();
});

it('a start taken for dead is fenced before its payment is given back: a late training is refused, the payment given back once', async () => {
  const v = await version({ status: 'starting', trainingId: null, ageMs: 3_600_000 });
  // The start the reconciler took for dead: its Replicate create answers while billing
  // is giving the payment back, and it records its training.
  let late: unknown = 'not tried';
  billing.during = async () => {
    if (late === 'not tried') late = await store.repos.versions.setTraining(v.id, `r8_${randomUUID()}`, 1000);
  };
  const [a, b] = [replica(), replica()];
  await Promise.all([a.runOnce(), b.runOnce(), a.runOnce()]);

  expect(billing.giveBacks).toEqual([
    {
      via: 'release',
      versionId: v.id,
      committed: { status: 'failed', replicate_training_id: null },
      released: true,
    },
  ]);
  // The late training found the row fenced (VersionService.launch then cancels it).
  expect(late).toBeUndefined();
  expect(billing.holders.has(v.paymentId)).toBe(false);
  const { rows } = await pool.query('SELECT 1 FROM trainer.versions WHERE id = $1', [v.id]);
  expect(rows).toHaveLength(0);
});

it('a fenced start whose release failed is released by a later pass', async () => {
  const v = await version({ status: 'starting', trainingId: null, ageMs: 3_600_000 });
  billing.during = () => Promise.reject(new Error('billing is down'));
  await replica().runOnce();
  expect(billing.holders.get(v.paymentId)).toBe(v.id);
  const { rows } = await pool.query('SELECT status FROM trainer.versions WHERE id = $1', [v.id]);
  expect(rows).toEqual([{ status: 'failed' }]);

  billing.during = undefined;
  // Due again, and counted by the loop-lag gauge as the claim counts it.
  const dueSince = new Date('2001-01-01T00:00:00Z');
  await pool.query('UPDATE trainer.versions SET next_check_at = $2 WHERE id = $1', [v.id, dueSince]);
  expect(await store.repos.versions.oldestDue()).toEqual(dueSince);
  await replica().runOnce();
  expect(billing.holders.has(v.paymentId)).toBe(false);
  expect(billing.giveBacks.filter((g) => g.released)).toHaveLength(1);
  expect(billing.giveBacks.every((g) => g.committed?.status === 'failed')).toBe(true);
});

it('two replicas and webhooks racing on a failed training give the payment back once, each time after `failed` committed', async () => {
  const trainingId = `r8_${randomUUID()}`;
  const v = await version({ status: 'processing', trainingId, ageMs: 60_000 });
  const failed = await failedAtReplicate.getTraining(trainingId);
  const [a, b] = [replica(), replica()];
  const hooks = [transitions(), transitions()];
  await Promise.all([
    a.runOnce(),
    hooks[0]!.applyWebhook(`msg_${randomUUID()}`, failed),
    b.runOnce(),
    hooks[1]!.applyWebhook(`msg_${randomUUID()}`, failed),
  ]);

  expect(billing.giveBacks.length).toBeGreaterThanOrEqual(1);
  for (const g of billing.giveBacks)
    expect(g).toEqual(
      expect.objectContaining({
        via: 'report_failed',
        committed: { status: 'failed', replicate_training_id: trainingId },
      }),
    );
  expect(billing.giveBacks.filter((g) => g.released)).toHaveLength(1);
  expect(billing.holders.has(v.paymentId)).toBe(false);
  const { rows } = await pool.query('SELECT status, grant_settled_at FROM trainer.versions WHERE id = $1', [
    v.id,
  ]);
  expect(rows).toEqual([{ status: 'failed', grant_settled_at: expect.any(Date) }]);
});
