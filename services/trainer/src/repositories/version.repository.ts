import { createdKeySql, type Cursor } from '@atelier/kit';
import type { TransitionPatch, VersionStatus } from '../domain/version.rules';
import type { Queryable } from '@atelier/kit';

export interface VersionRow {
  id: string;
  account_id: string;
  payment_id: string;
  status: VersionStatus;
  class_name: string;
  trigger_word: string;
  model: string;
  replicate_training_id: string | null;
  replicate_version: string | null;
  dataset_key: string;
  image_count: number;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  pushed_at: Date | null;
  predict_time: number | null;
  cost_micros: number | null;
  next_check_at: Date;
  deadline_at: Date;
  grant_settled_at: Date | null;
  usage_recorded_at: Date | null;
  settled_at: Date | null;
  callback_url: string | null;
  deleted_at: Date | null;
  dataset_deleted_at: Date | null;
}

const NAMES = [
  'id',
  'account_id',
  'payment_id',
  'status',
  'class_name',
  'trigger_word',
  'model',
  'replicate_training_id',
  'replicate_version',
  'dataset_key',
  'image_count',
  'error',
  'created_at',
  'started_at',
  'completed_at',
  'pushed_at',
  'predict_time',
  'cost_micros',
  'next_check_at',
  'deadline_at',
  'grant_settled_at',
  'usage_recorded_at',
  'settled_at',
  'callback_url',
  'deleted_at',
  'dataset_deleted_at',
] as const;
const columns = (alias = '') => NAMES.map((n) => `${alias}${n}`).join(', ');
const COLUMNS = columns();
/** The statuses a training counts against the account's cap in. */
const RUNNING = `('starting', 'processing')`;
/**
 * The reconciler's due versions. A row without a training is a start in progress or dead
 * ('starting'), or a dead one fenced whose payment is still to be given back ('failed'); past
 * those it was not made by a start (a test fixture, a manual insert): nothing to ask
 * Replicate about.
 */
const DUE = `settled_at IS NULL AND next_check_at <= now()
  AND (replicate_training_id IS NOT NULL OR status IN ('starting', 'failed'))`;
// The reconciler's gap before the next check of row v: a tenth of its age, between $2 and $3 ms.
const GAP = `LEAST($3::float8, GREATEST($2::float8, extract(epoch FROM now() - v.created_at)::float8 * 100)) * interval '1 millisecond'`;

/** What a new version row is made of. */
export interface NewVersion {
  id: string;
  accountId: string;
  paymentId: string;
  className: string;
  triggerWord: string;
  model: string;
  datasetKey: string;
  imageCount: number;
  timeoutMs: number;
  startGraceMs: number;
  callbackUrl?: string | null;
}

/** trainer.versions: one statement per method; status changes are guarded by the status they expect. */
export class VersionRepository {
  constructor(private readonly db: Queryable) {}

  /**
   * A new version, not yet known to Replicate (the reconciler leaves it alone until `startGraceMs`
   * passed), only while the account has fewer than `maxRunning` trainings starting or running
   * (one statement, so no lock is held while racers queue); undefined when it has that many.
   */
  async insertUnderCap(v: NewVersion, maxRunning: number): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `INSERT INTO trainer.versions (id, account_id, payment_id, class_name, trigger_word, model, dataset_key, image_count,
                                     deadline_at, next_check_at, callback_url)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, now() + $9::float8 * interval '1 millisecond', now() + $10::float8 * interval '1 millisecond', $11
        WHERE (SELECT count(*) FROM trainer.versions WHERE account_id = $2 AND status IN ${RUNNING}) < $12
       RETURNING ${COLUMNS}`,
      [
        v.id,
        v.accountId,
        v.paymentId,
        v.className,
        v.triggerWord,
        v.model,
        v.datasetKey,
        v.imageCount,
        v.timeoutMs,
        v.startGraceMs,
        v.callbackUrl ?? null,
        maxRunning,
      ],
    );
    return rows[0];
  }

  /** The account's trainings starting or running. */
  async countRunningOf(accountId: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM trainer.versions WHERE account_id = $1 AND status IN ${RUNNING}`,
      [accountId],
    );
    return rows[0]?.n ?? 0;
  }

  /** A page of the account's versions, newest first, after the cursor's (created_at, id): one statement. */
  async listByAccount(
    accountId: string,
    status: VersionStatus | undefined,
    after: Cursor | undefined,
    limit: number,
  ): Promise<Array<VersionRow & { createdKey: string }>> {
    const { rows } = await this.db.query<VersionRow & { created_key: string }>(
      `SELECT ${COLUMNS}, ${createdKeySql('created_at')} AS created_key FROM trainer.versions
        WHERE account_id = $1 AND ($2::text IS NULL OR status = $2) AND deleted_at IS NULL
          AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $5`,
      [accountId, status ?? null, after?.createdKey ?? null, after?.id ?? null, limit],
    );
    return rows.map(({ created_key, ...row }) => ({ ...row, createdKey: created_key }));
  }

  async find(id: string): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `SELECT ${COLUMNS} FROM trainer.versions WHERE id = $1`,
      [id],
    );
    return rows[0];
  }

  /** Locks the row for the rest of the transaction: every report about one version queues here. */
  async lock(id: string): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `SELECT ${COLUMNS} FROM trainer.versions WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0];
  }

  async lockByTraining(trainingId: string): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `SELECT ${COLUMNS} FROM trainer.versions WHERE replicate_training_id = $1 FOR UPDATE`,
      [trainingId],
    );
    return rows[0];
  }

  /**
   * Records the Replicate training; undefined when the row is gone or fenced (the reconciler gave
   * up on it: abandonUnstarted).
   */
  async setTraining(id: string, trainingId: string, firstCheckInMs: number): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `UPDATE trainer.versions SET replicate_training_id = $2, next_check_at = now() + $3::float8 * interval '1 millisecond'
        WHERE id = $1 AND replicate_training_id IS NULL AND status = 'starting'
        RETURNING ${COLUMNS}`,
      [id, trainingId, firstCheckInMs],
    );
    return rows[0];
  }

  /**
   * The fence before a dead start's payment is given back: a version still `starting` without a
   * training becomes `failed`, committed under the row lock this statement takes, so a start
   * whose Replicate create answers late can no longer record its training (setTraining refuses).
   * False when the training was recorded first (or the row is gone): nothing to give back then.
   */
  async abandonUnstarted(id: string, error: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE trainer.versions SET status = 'failed', error = $2, completed_at = now()
        WHERE id = $1 AND status = 'starting' AND replicate_training_id IS NULL`,
      [id, error],
    );
    return rowCount === 1;
  }

  /** Removes a version whose training was never created, so its payment can train another. */
  async deleteUnstarted(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'DELETE FROM trainer.versions WHERE id = $1 AND replicate_training_id IS NULL',
      [id],
    );
    return rowCount === 1;
  }

  /** Applies a planned transition, only from the status it was planned from. */
  async transition(id: string, from: VersionStatus, p: TransitionPatch): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `UPDATE trainer.versions
          SET status = $3, started_at = $4, completed_at = $5, error = $6, predict_time = $7, cost_micros = $8,
              replicate_version = COALESCE($9, replicate_version)
        WHERE id = $1 AND status = $2
        RETURNING ${COLUMNS}`,
      [
        id,
        from,
        p.status,
        p.started_at,
        p.completed_at,
        p.error,
        p.predict_time,
        p.cost_micros,
        p.replicate_version,
      ],
    );
    return rows[0];
  }

  /** The trained weights exist as a runnable version: the version is ready. */
  async markPushed(id: string, replicateVersion: string | null): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `UPDATE trainer.versions SET pushed_at = now(), replicate_version = COALESCE(replicate_version, $2)
        WHERE id = $1 AND status = 'succeeded' AND pushed_at IS NULL
        RETURNING ${COLUMNS}`,
      [id, replicateVersion],
    );
    return rows[0];
  }

  async markGrantSettled(id: string): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `UPDATE trainer.versions SET grant_settled_at = now() WHERE id = $1 AND grant_settled_at IS NULL RETURNING ${COLUMNS}`,
      [id],
    );
    return rows[0];
  }

  async markUsageRecorded(id: string): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `UPDATE trainer.versions SET usage_recorded_at = now()
        WHERE id = $1 AND usage_recorded_at IS NULL AND status IN ('succeeded', 'failed', 'canceled')
        RETURNING ${COLUMNS}`,
      [id],
    );
    return rows[0];
  }

  /**
   * Takes the version off the reconciler's queue once nothing is left to do: finished, credits and
   * usage settled, and pushed if it succeeded — unless `givingUpOnPush` (its deadline passed).
   */
  async markSettled(id: string, givingUpOnPush: boolean): Promise<VersionRow | undefined> {
    const { rows } = await this.db.query<VersionRow>(
      `UPDATE trainer.versions SET settled_at = now()
        WHERE id = $1 AND settled_at IS NULL AND status IN ('succeeded', 'failed', 'canceled')
          AND grant_settled_at IS NOT NULL AND usage_recorded_at IS NOT NULL
          AND (status <> 'succeeded' OR pushed_at IS NOT NULL OR $2)
        RETURNING ${COLUMNS}`,
      [id, givingUpOnPush],
    );
    return rows[0];
  }

  /**
   * The reconciler's claim, in one statement: up to `limit` due versions no other replica holds
   * (SKIP LOCKED), each rescheduled before the lock is released. The next check comes after a
   * tenth of the version's age — young trainings are checked often, old ones rarely — between
   * `minGapMs` and `maxGapMs`; a training in flight no later than its deadline, so a timeout is
   * noticed on time.
   */
  async claimDue(limit: number, minGapMs: number, maxGapMs: number): Promise<VersionRow[]> {
    const { rows } = await this.db.query<VersionRow>(
      `WITH due AS (
         SELECT id FROM trainer.versions
          WHERE ${DUE}
          ORDER BY next_check_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED
       )
       UPDATE trainer.versions v
          SET next_check_at = CASE
                WHEN v.status IN ('starting', 'processing')
                  THEN GREATEST(now() + $2::float8 * interval '1 millisecond', LEAST(v.deadline_at, now() + ${GAP}))
                ELSE now() + ${GAP}
              END
         FROM due
        WHERE v.id = due.id
        RETURNING ${columns('v.')}`,
      [limit, minGapMs, maxGapMs],
    );
    return rows;
  }

  /** When the longest-waiting due version came due (the claim's own filter), for the loop lag. */
  async oldestDue(): Promise<Date | null> {
    const { rows } = await this.db.query<{ at: Date | null }>(
      `SELECT min(next_check_at) AS at FROM trainer.versions WHERE ${DUE}`,
    );
    return rows[0]?.at ?? null;
  }

  /** Trainings not finished yet, for the in-flight gauge. */
  async countInFlight(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM trainer.versions WHERE settled_at IS NULL AND status IN ${RUNNING}`,
    );
    return rows[0]?.n ?? 0;
  }

  /** The customer asked for the version to go: it answers 410 from now on. */
  async markDeleted(id: string): Promise<void> {
    await this.db.query(
      'UPDATE trainer.versions SET deleted_at = COALESCE(deleted_at, now()) WHERE id = $1',
      [id],
    );
  }

  /** Every version of the account answers 410 from now on; how many there are. */
  async markAccountDeleted(accountId: string): Promise<number> {
    const { rowCount } = await this.db.query(
      'UPDATE trainer.versions SET deleted_at = COALESCE(deleted_at, now()) WHERE account_id = $1',
      [accountId],
    );
    return rowCount ?? 0;
  }

  /**
   * The retention job's claim: finished trainings whose zip is still stored and whose training
   * ended before `cutoff`, skipping rows another replica holds; each is leased until `leaseUntil`
   * so a replica that dies mid-way leaves it to the next claim after that.
   */
  async claimExpiredDatasets(
    limit: number,
    cutoff: Date,
    now: Date,
    leaseUntil: Date,
  ): Promise<VersionRow[]> {
    const { rows } = await this.db.query<VersionRow>(
      `WITH due AS (
         SELECT id FROM trainer.versions
          WHERE dataset_deleted_at IS NULL AND completed_at IS NOT NULL AND completed_at <= $2
            AND (dataset_retry_at IS NULL OR dataset_retry_at <= $3)
          ORDER BY completed_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED
       )
       UPDATE trainer.versions v SET dataset_retry_at = $4
         FROM due WHERE v.id = due.id
        RETURNING ${columns('v.')}`,
      [limit, cutoff, now, leaseUntil],
    );
    return rows;
  }

  /** A failed dataset deletion is tried again at `at`. */
  async retryDatasetAt(id: string, at: Date): Promise<void> {
    await this.db.query('UPDATE trainer.versions SET dataset_retry_at = $2 WHERE id = $1', [id, at]);
  }

  async markDatasetDeleted(id: string): Promise<void> {
    await this.db.query(
      'UPDATE trainer.versions SET dataset_deleted_at = COALESCE(dataset_deleted_at, now()) WHERE id = $1',
      [id],
    );
  }

  /** Finished trainings whose zip is still stored, for the retention gauge. */
  async countStoredDatasets(cutoff: Date): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM trainer.versions
        WHERE dataset_deleted_at IS NULL AND completed_at IS NOT NULL AND completed_at <= $1`,
      [cutoff],
    );
    return rows[0]?.n ?? 0;
  }
}
