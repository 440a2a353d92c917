import { withTransaction, type Pool } from '@atelier/kit';
import { PromptImageRepository } from './prompt-image.repository';
import { PromptRepository } from './prompt.repository';
import type { Queryable } from './queryable';
import { WebhookEventRepository } from './webhook-event.repository';

/** The inferencer's repositories, all on one connection (the pool, or one transaction's client). */
export function repositories(db: Queryable) {
  return {
    prompts: new PromptRepository(db),
    images: new PromptImageRepository(db),
    webhookEvents: new WebhookEventRepository(db),
  };
}
export type Repositories = ReturnType<typeof repositories>;

/** What the domain needs from storage: repositories on the pool, and a way to run a transaction. */
export interface Store {
  repos: Repositories;
  /** Runs fn in one transaction: everything it does commits together or not at all. */
  transaction<T>(fn: (repos: Repositories) => Promise<T>): Promise<T>;
}

export function createStore(pool: Pool): Store {
  return {
    repos: repositories(pool),
    transaction: (fn) => withTransaction(pool, (client) => fn(repositories(client))),
  };
}
