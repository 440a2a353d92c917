import type { Logger, Metrics } from '@atelier/kit';
import type { DeletionRow, Store } from '../repositories';
import { retryDelayMs, type DeletionSchedule } from './deletion.rules';
import type { BillingPort } from './ports';

export interface AccountDeletionJobDeps {
  store: Store;
  billing: BillingPort;
  metrics: Metrics['business'];
  logger: Logger;
  now: () => Date;
}

/**
 * Work on the claim loop: an account is deleted once every one of its versions is. Each pass
 * first makes sure every version has its deletion (one started while the request was recorded
 * gets one now), then, when none is left unfinished, billing revokes the keys and erases the
 * email. Until then the row simply comes back later.
 */
export class AccountDeletionJob {
  readonly name = 'account_deletion';

  constructor(
    private readonly d: AccountDeletionJobDeps,
    private readonly s: DeletionSchedule,
  ) {}

  /** Claims due rows and leases them past `leaseMs`, in one statement (the claim loop's contract). */
  claim(limit = this.s.batch): Promise<DeletionRow[]> {
    const now = this.d.now();
    return this.d.store.repos.accountDeletions.claimDue(limit, now, new Date(now.getTime() + this.s.leaseMs));
  }

  idOf(row: DeletionRow): string {
    return row.id;
  }

  /** Refreshes the pending gauge after each pass. */
  async afterPass(): Promise<void> {
    this.d.metrics.deletionsPending.set(
      { kind: 'account' },
      await this.d.store.repos.accountDeletions.countPending(),
    );
  }

  async handle(row: DeletionRow): Promise<void> {
    const { store, billing, metrics, logger } = this.d;
    const log = logger.child({ account_id: row.id });
    try {
      const pending = await store.transaction(async (repos) => {
        await repos.versionDeletions.insertForAccount(row.id);
        await repos.versions.markAccountDeleted(row.id);
        return repos.versionDeletions.countPendingForAccount(row.id);
      });
      if (pending > 0) {
        await store.repos.accountDeletions.retryAt(
          row.id,
          new Date(this.d.now().getTime() + this.s.retryBaseMs),
          null,
        );
        log.info({ pending }, 'account deletion waits for its versions');
        return;
      }
      await billing.eraseAccount(row.id);
      await store.repos.accountDeletions.complete(row.id);
      metrics.deletions.inc({ kind: 'account', outcome: 'completed' });
      metrics.deletionSeconds.observe(
        { kind: 'account' },
        (this.d.now().getTime() - row.requested_at.getTime()) / 1000,
      );
      log.info('account deleted: keys revoked, email erased');
    } catch (err) {
      const at = new Date(this.d.now().getTime() + retryDelayMs(row.attempts, this.s));
      await store.repos.accountDeletions.retryAt(row.id, at, (err as Error).message.slice(0, 500));
      metrics.deletions.inc({ kind: 'account', outcome: 'retried' });
      log.warn({ err: (err as Error).message, retry_at: at.toISOString() }, 'account deletion retried later');
    }
  }
}
