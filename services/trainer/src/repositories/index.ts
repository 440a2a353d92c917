import {
  OutboxRepository,
  WebhookEventRepository,
  type Queryable,
  type Store as KitStore,
} from '@atelier/kit';
import { AccountDeletionRepository, VersionDeletionRepository } from './deletion.repository';
import { VersionRepository } from './version.repository';

export type { VersionRow } from './version.repository';
export type { DeletionRow } from './deletion.repository';

/** Trainer's repositories on one connection (the pool, or one transaction's client). */
export function trainerRepositories(db: Queryable) {
  return {
    versions: new VersionRepository(db),
    webhookEvents: new WebhookEventRepository(db, 'trainer'),
    outbox: new OutboxRepository(db, 'trainer'),
    versionDeletions: new VersionDeletionRepository(db),
    accountDeletions: new AccountDeletionRepository(db),
  };
}
export type TrainerRepositories = ReturnType<typeof trainerRepositories>;
export type Store = KitStore<TrainerRepositories>;
