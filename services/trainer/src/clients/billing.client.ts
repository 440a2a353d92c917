import {
  createGrpcClient,
  toOutboundEvent,
  type Metrics,
  type OutboxEvent,
  type PublishEvents,
} from '@atelier/kit';
import { billing } from '@atelier/protos';
import type { BillingPort } from '../domain/ports';

/**
 * Trainer's calls to billing. Errors arrive as AppError (billing's 404/402/409 stay what they
 * are), so the domain never sees gRPC. Calls made inside an RPC carry its deadline.
 */
export function createBillingClient(
  address: string,
  opts: { timeoutMs: number; metrics?: Metrics },
): BillingPort & { publishEvents: PublishEvents; close(): void } {
  const client = createGrpcClient(billing.BillingServiceService, address, opts);
  return {
    async claimInitPayment(accountId, paymentId, versionId) {
      await client.claimInitPayment({ accountId, paymentId, versionId });
    },
    async releaseInitPayment(paymentId, versionId) {
      return (await client.releaseInitPayment({ paymentId, versionId })).released;
    },
    async grantCredits(accountId, versionId, paymentId) {
      await client.grantCredits({ accountId, versionId, paymentId });
    },
    async forfeitCredits(accountId, versionId) {
      await client.forfeitCredits({ accountId, versionId });
    },
    async eraseAccount(accountId) {
      await client.eraseAccount({ accountId });
    },
    async recordUsage(u) {
      await client.recordUsage({
        accountId: u.accountId,
        kind: 'training',
        refId: u.versionId,
        versionId: u.versionId,
        predictSeconds: u.predictSeconds,
        costMicros: Math.max(0, Math.round(u.costMicros)),
      });
    },
    /** The outbox relay's target: billing records each event once, however often it comes. */
    async publishEvents(events: OutboxEvent[]) {
      await client.publishEvents({ events: events.map(toOutboundEvent) });
    },
    close: () => client.close(),
  };
}
