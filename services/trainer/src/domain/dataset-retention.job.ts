import type { Logger, Metrics } from '@atelier/kit';
import type { Store, VersionRow } from '../repositories';
import { retentionCutoff, type DeletionSchedule } from './deletion.rules';
import type { ObjectsPort } from './ports';

export interface RetentionJobDeps {
  store: Store;
  objects: ObjectsPort;
  metrics: Metrics['business'];
  logger: Logger;
  now: () => Date;
}

/**
 * Work on the claim loop: a training zip (photos of a person) is deleted from the bucket
 * `retentionDays` after its training ended, whatever the outcome: Replicate has read it by then,
 * and nothing of ours reads it again.
 */
export class DatasetRetentionJob {
  readonly name = 'dataset_retention';

  constructor(
    private readonly d: RetentionJobDeps,
    private readonly s: DeletionSchedule & { retentionDays: number },
  ) {}

  /** Claims finished trainings past their retention and leases them, in one statement. */
  claim(limit = this.s.batch): Promise<VersionRow[]> {
    const now = this.d.now();
    const cutoff = retentionCutoff(now, this.s.retentionDays);
    return this.d.store.repos.versions.claimExpiredDatasets(
      limit,
      cutoff,
      now,
      new Date(now.getTime() + this.s.leaseMs),
    );
  }

  idOf(v: VersionRow): string {
    return v.id;
  }

  /** Refreshes the gauge of zips past their retention still stored. */
  async afterPass(): Promise<void> {
    const cutoff = retentionCutoff(this.d.now(), this.s.retentionDays);
    this.d.metrics.deletionsPending.set(
      { kind: 'dataset' },
      await this.d.store.repos.versions.countStoredDatasets(cutoff),
    );
  }

  async handle(v: VersionRow): Promise<void> {
    const { store, objects, metrics, logger } = this.d;
    try {
      await objects.deleteDataset(v.dataset_key);
      await store.repos.versions.markDatasetDeleted(v.id);
      metrics.deletions.inc({ kind: 'dataset', outcome: 'completed' });
      logger.info(
        { version_id: v.id, completed_at: v.completed_at },
        'training zip deleted after its retention',
      );
    } catch (err) {
      await store.repos.versions.retryDatasetAt(v.id, new Date(this.d.now().getTime() + this.s.retryBaseMs));
      metrics.deletions.inc({ kind: 'dataset', outcome: 'retried' });
      logger.warn(
        { version_id: v.id, err: (err as Error).message },
        'could not delete an expired training zip; retried later',
      );
    }
  }
}
