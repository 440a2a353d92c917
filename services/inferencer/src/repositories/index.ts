import {
  OutboxRepository,
  WebhookEventRepository,
  type Queryable,
  type Store as KitStore,
} from '@atelier/kit';
import { OfferRepository } from './offer.repository';
import { PackRepository } from './pack.repository';
import { PromptImageRepository } from './prompt-image.repository';
import { PromptRepository } from './prompt.repository';
import { RunRepository } from './run.repository';

/** The inferencer's repositories, all on one connection (the pool, or one transaction's client). */
export function repositories(db: Queryable) {
  return {
    prompts: new PromptRepository(db),
    images: new PromptImageRepository(db),
    webhookEvents: new WebhookEventRepository(db, 'inferencer'),
    outbox: new OutboxRepository(db, 'inferencer'),
    offers: new OfferRepository(db),
    packs: new PackRepository(db),
    runs: new RunRepository(db),
  };
}
export type Repositories = ReturnType<typeof repositories>;
export type Store = KitStore<Repositories>;
