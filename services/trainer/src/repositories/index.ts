import { withTransaction, type Pool } from '@atelier/kit';
import type { Queryable } from './queryable';
import { VersionRepository } from './version.repository';
import { WebhookEventRepository } from './webhook-event.repository';

export type { VersionRow } from './version.repository';

/** Trainer's repositories on one connection (the pool, or one transaction's client). */
export function trainerRepositories(db: Queryable) {
  return { versions: new VersionRepository(db), webhookEvents: new WebhookEventRepository(db) };
}
export type TrainerRepositories = ReturnType<typeof trainerRepositories>;

/** What the domain needs from storage: repositories on the pool, and a way to run a transaction. */
export interface Store {
  repos: TrainerRepositories;
  /** Runs fn in one transaction: everything it does commits together or not at all. */
  transaction<T>(fn: (repos: TrainerRepositories) => Promise<T>): Promise<T>;
}

export function createStore(pool: Pool): Store {
  return {
    repos: trainerRepositories(pool),
    transaction: (fn) => withTransaction(pool, (client) => fn(trainerRepositories(client))),
  };
}
