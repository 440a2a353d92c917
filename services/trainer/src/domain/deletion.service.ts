import { Errors, requireUuid, type Logger } from '@atelier/kit';
import type { Store } from '../repositories';

/**
 * The customer's deletion requests. Each only records what is to go (in one transaction, so a
 * request is either wholly recorded or not at all) and answers; the jobs do the work, retried
 * until done, on whichever replica claims it.
 */
export class DeletionService {
  constructor(private readonly d: { store: Store; logger: Logger }) {}

  /**
   * The version answers 410 from now on. A repeated request while the deletion runs is accepted
   * again (202); once it finished, 410.
   */
  async deleteVersion(
    accountId: string,
    versionId: string,
  ): Promise<{ versionId: string; requestedAt: Date }> {
    const account = requireUuid('account_id', accountId);
    const id = requireUuid('version_id', versionId);
    const { store } = this.d;
    const row = await store.repos.versions.find(id);
    // Another account's version is as unknown as a missing one.
    if (!row || row.account_id !== account) throw Errors.notFound('version', id);
    const recorded = await store.transaction(async (repos) => {
      await repos.versions.markDeleted(id);
      await repos.versionDeletions.insert(id, account);
      return repos.versionDeletions.find(id);
    });
    if (!recorded) throw Errors.notFound('version', id);
    if (recorded.completed_at) throw Errors.versionDeleted(id);
    this.d.logger.info({ version_id: id, account_id: account }, 'version deletion requested');
    return { versionId: id, requestedAt: recorded.requested_at };
  }

  /**
   * Every version of the account answers 410 from now on, each with its own deletion; the
   * account's own deletion (keys, email) follows once they are all done. Idempotent.
   */
  async deleteAccount(accountId: string): Promise<number> {
    const account = requireUuid('account_id', accountId);
    const versions = await this.d.store.transaction(async (repos) => {
      await repos.accountDeletions.insert(account);
      await repos.versionDeletions.insertForAccount(account);
      return repos.versions.markAccountDeleted(account);
    });
    this.d.logger.info({ account_id: account, versions }, 'account deletion requested');
    return versions;
  }
}
