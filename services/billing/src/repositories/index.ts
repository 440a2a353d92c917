import type { Queryable, Store as KitStore } from '@atelier/kit';
import { AccountRepository } from './account.repository';
import { ApiKeyRepository } from './api-key.repository';
import { CreditBalanceRepository } from './credit-balance.repository';
import { CreditGrantRepository } from './credit-grant.repository';
import { CreditLedgerRepository } from './credit-ledger.repository';
import { CreditReservationRepository } from './credit-reservation.repository';
import { PaymentRepository } from './payment.repository';
import { StripeEventRepository } from './stripe-event.repository';
import { TrainedVersionRepository } from './trained-version.repository';
import { UsageRepository } from './usage.repository';
import { WebhookDeliveryRepository } from './webhook-delivery.repository';
import { WebhookEndpointRepository } from './webhook-endpoint.repository';
import { WebhookEventRepository } from './webhook-event.repository';

/** Billing's repositories, all on one connection (the pool, or one transaction's client). */
export function paymentRepositories(db: Queryable) {
  return {
    accounts: new AccountRepository(db),
    apiKeys: new ApiKeyRepository(db),
    payments: new PaymentRepository(db),
    events: new StripeEventRepository(db),
    balances: new CreditBalanceRepository(db),
    grants: new CreditGrantRepository(db),
    reservations: new CreditReservationRepository(db),
    ledger: new CreditLedgerRepository(db),
    usage: new UsageRepository(db),
    webhookEndpoints: new WebhookEndpointRepository(db),
    webhookEvents: new WebhookEventRepository(db),
    webhookDeliveries: new WebhookDeliveryRepository(db),
    trainedVersions: new TrainedVersionRepository(db),
  };
}
export type PaymentRepositories = ReturnType<typeof paymentRepositories>;
export type Store = KitStore<PaymentRepositories>;
