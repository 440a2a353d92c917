import type { Logger, Metrics } from '@atelier/kit';
import type { DeletionRow, Store, VersionRow } from '../repositories';
import { retryDelayMs, type DeletionSchedule } from './deletion.rules';
import type { BillingPort, ObjectsPort, PromptsPort, ReplicatePort } from './ports';
import type { VersionTransitions } from './version-transition.service';
import { isTerminal } from './version.rules';

export interface DeletionJobDeps {
  store: Store;
  billing: BillingPort;
  replicate: ReplicatePort;
  prompts: PromptsPort;
  objects: ObjectsPort;
  transitions: VersionTransitions;
  metrics: Metrics['business'];
  logger: Logger;
  /** The clock the claims and schedules use; a test moves it instead of waiting. */
  now: () => Date;
}

/** Not done yet, and not a failure: the step waits on something that takes its time. */
class NotYet extends Error {}

/**
 * Work on the claim loop: deletes one version's data everywhere, each step idempotent so a retry
 * (after a failure, or after the replica doing it died and its lease ran out) simply starts over.
 * Order matters: billing forfeits the credits first, as the forfeit is how billing learns of the
 * deletion and refuses add-ons for it (a grant after the forfeit grants nothing, so a training
 * that still succeeds changes nothing); the training stops next (it would push weights after the
 * model is gone); the model goes at Replicate (its predictions and their outputs go with it, and
 * no new prompt can run), which may take several passes; then inferencer erases the prompts and
 * their images, and the dataset leaves the bucket.
 */
export class VersionDeletionJob {
  readonly name = 'version_deletion';

  constructor(
    private readonly d: DeletionJobDeps,
    private readonly s: DeletionSchedule,
  ) {}

  /** Claims due rows and leases them past `leaseMs`, in one statement (the claim loop's contract). */
  claim(limit = this.s.batch): Promise<DeletionRow[]> {
    const now = this.d.now();
    return this.d.store.repos.versionDeletions.claimDue(limit, now, new Date(now.getTime() + this.s.leaseMs));
  }

  idOf(row: DeletionRow): string {
    return row.id;
  }

  /** Refreshes the pending gauge after each pass. */
  async afterPass(): Promise<void> {
    this.d.metrics.deletionsPending.set(
      { kind: 'version' },
      await this.d.store.repos.versionDeletions.countPending(),
    );
  }

  /** Never throws for a failed step: the row is rescheduled with backoff and its error kept. */
  async handle(row: DeletionRow): Promise<void> {
    const { store, metrics, logger } = this.d;
    const log = logger.child({ version_id: row.id, account_id: row.account_id });
    try {
      await this.deleteEverything(row);
      await store.repos.versionDeletions.complete(row.id);
      metrics.deletions.inc({ kind: 'version', outcome: 'completed' });
      metrics.deletionSeconds.observe(
        { kind: 'version' },
        (this.d.now().getTime() - row.requested_at.getTime()) / 1000,
      );
      log.info({ attempts: row.attempts }, 'version deleted');
    } catch (err) {
      const waiting = err instanceof NotYet;
      const at = new Date(
        this.d.now().getTime() + (waiting ? this.s.retryBaseMs : retryDelayMs(row.attempts, this.s)),
      );
      await store.repos.versionDeletions.retryAt(row.id, at, (err as Error).message.slice(0, 500));
      metrics.deletions.inc({ kind: 'version', outcome: 'retried' });
      (waiting ? log.info.bind(log) : log.warn.bind(log))(
        { err: (err as Error).message, attempts: row.attempts, retry_at: at.toISOString() },
        'version deletion not finished; retried later',
      );
    }
  }

  private async deleteEverything(row: DeletionRow): Promise<void> {
    const { store, replicate, prompts, billing, objects } = this.d;
    const v = await store.repos.versions.find(row.id);
    // The version row went (a start that never reached Replicate): nothing of it exists anywhere.
    if (!v) return;
    await billing.forfeitCredits(v.account_id, v.id);
    await this.stopTraining(v);
    if ((await replicate.deleteModel(v.model)) === 'pending')
      throw new NotYet('Replicate is still deleting the model versions');
    await prompts.eraseVersionPrompts(v.account_id, v.id);
    if (!v.dataset_deleted_at) {
      await objects.deleteDataset(v.dataset_key);
      await store.repos.versions.markDatasetDeleted(v.id);
    }
  }

  /** A running training is canceled and recorded so; the usual follow-ups (payment, usage) apply. */
  private async stopTraining(v: VersionRow): Promise<void> {
    if (isTerminal(v.status)) return;
    if (!v.replicate_training_id) throw new NotYet('the training is still being started');
    const { row } = await this.d.transitions.cancelAtReplicate(v.id, v.replicate_training_id, 'cancel');
    if (row) await this.d.transitions.followUp(row);
  }
}
