import {
  createGrpcClient,
  toOutboundEvent,
  type Metrics,
  type OutboxEvent,
  type PublishEvents,
} from '@atelier/kit';
import { billing } from '@atelier/protos';
import type { BillingPort, TrainingOutcome } from '../domain/ports';

const OUTCOME: Record<TrainingOutcome, billing.TrainingOutcome> = {
  running: billing.TrainingOutcome.TRAINING_OUTCOME_RUNNING,
  ready: billing.TrainingOutcome.TRAINING_OUTCOME_READY,
  failed: billing.TrainingOutcome.TRAINING_OUTCOME_FAILED,
};

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
      const { plan } = await client.claimInitPayment({ accountId, paymentId, versionId });
      if (!plan) throw new Error(`billing claimed payment ${paymentId} without its plan`);
      return { minImages: plan.minImages, maxImages: plan.maxImages };
    },
    async releaseInitPayment(paymentId, versionId) {
      return (await client.releaseInitPayment({ paymentId, versionId })).released;
    },
    async reportOutcome(v, outcome) {
      const { keepTraining } = await client.reportTrainingOutcome({
        accountId: v.accountId,
        paymentId: v.paymentId,
        versionId: v.versionId,
        outcome: OUTCOME[outcome],
      });
      return { keepTraining };
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
