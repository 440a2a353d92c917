import type { Pool } from '@atelier/kit';
import { withTransaction } from '@atelier/kit';
import { CreditBalanceRepository } from './credit-balance.repository';
import { CreditGrantRepository } from './credit-grant.repository';
import { CreditLedgerRepository } from './credit-ledger.repository';
import { CreditReservationRepository } from './credit-reservation.repository';
import { PaymentRepository } from './payment.repository';
import type { Queryable } from './queryable';
import { StripeEventRepository } from './stripe-event.repository';
import { UsageRepository } from './usage.repository';

/** The payment and credit repositories, all on one connection (the pool, or one transaction's client). */
export function paymentRepositories(db: Queryable) {
  return {
    payments: new PaymentRepository(db),
    events: new StripeEventRepository(db),
    balances: new CreditBalanceRepository(db),
    grants: new CreditGrantRepository(db),
    reservations: new CreditReservationRepository(db),
    ledger: new CreditLedgerRepository(db),
    usage: new UsageRepository(db),
  };
}
export type PaymentRepositories = ReturnType<typeof paymentRepositories>;

/** What the domain needs from storage: repositories on the pool, and a way to run a transaction. */
export interface Store {
  repos: PaymentRepositories;
  /** Runs fn in one transaction: everything it does commits together or not at all. */
  transaction<T>(fn: (repos: PaymentRepositories) => Promise<T>): Promise<T>;
}

export function createStore(pool: Pool): Store {
  return {
    repos: paymentRepositories(pool),
    transaction: (fn) => withTransaction(pool, (client) => fn(paymentRepositories(client))),
  };
}
