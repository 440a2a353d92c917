import {
  AppError,
  createGrpcClient,
  toOutboundEvent,
  type Metrics,
  type OutboxEvent,
  type PublishEvents,
} from '@atelier/kit';
import { billing } from '@atelier/protos';
import type { Credits } from '../domain/ports';

/**
 * Billing's credit ledger as the domain's Credits port. Errors arrive as AppError, so
 * insufficient_credits (with `remaining`) reaches the gateway as a 402 unchanged.
 */
export function createBillingCredits(address: string, opts: { timeoutMs: number; metrics?: Metrics }) {
  const client = createGrpcClient(billing.BillingServiceService, address, opts);
  const credits: Credits & { publishEvents: PublishEvents; close(): void } = {
    /** The outbox relay's target: billing records each event once, however often it comes. */
    async publishEvents(events: OutboxEvent[]) {
      await client.publishEvents({ events: events.map(toOutboundEvent) });
    },
    async reserve(accountId, versionId, reservationId, amount) {
      const { balance } = await client.reserveCredits({ accountId, versionId, reservationId, amount });
      return { remaining: balance?.remaining ?? 0 };
    },
    async balance(accountId, versionId) {
      const { balance } = await client.getCreditBalance({ accountId, versionId });
      return { remaining: balance?.remaining ?? 0 };
    },
    async settle(reservationId, used) {
      await client.settleCredits({ reservationId, used });
    },
    async release(reservationId) {
      try {
        await client.releaseCredits({ reservationId });
      } catch (err) {
        // Never reserved (the reservation was refused or never reached billing): nothing to give back.
        if (err instanceof AppError && err.code === 'not_found') return;
        throw err;
      }
    },
    async recordUsage(accountId, promptId, versionId, predictSeconds, costMicros) {
      await client.recordUsage({
        accountId,
        kind: 'prediction',
        refId: promptId,
        versionId,
        predictSeconds,
        costMicros,
      });
    },
    close: () => client.close(),
  };
  return credits;
}
