import type { TrainingObservation } from './version.rules';

/** What the domain needs from billing. Errors arrive as AppError (404/402/409 stay what billing said). */
export interface BillingPort {
  /** Binds a paid, unused init payment of the account to the version; answers 404/402/409 itself. */
  claimInitPayment(accountId: string, paymentId: string, versionId: string): Promise<void>;
  /** Gives the payment back, only if this version still holds it. */
  releaseInitPayment(paymentId: string, versionId: string): Promise<boolean>;
  /** The payment's plan credits go to the version; a second call for one payment is a no-op. */
  grantCredits(accountId: string, versionId: string, paymentId: string): Promise<void>;
  /** Replicate time and estimated cost of the training; recorded once per version. */
  recordUsage(u: {
    accountId: string;
    versionId: string;
    predictSeconds: number;
    costMicros: number;
  }): Promise<void>;
}

export interface TrainingRequest {
  /** owner/name of the trainer model and its version id. */
  trainer: { model: string; version: string };
  /** owner/name of the model the weights are pushed to. */
  destination: string;
  input: Record<string, unknown>;
  webhook: string;
  webhookEventsFilter: Array<'start' | 'output' | 'logs' | 'completed'>;
}

export type ReplicateTraining = TrainingObservation & { id: string };

/** What the domain needs from Replicate. Failures are AppErrors: 503 for Replicate trouble, 504 for its silence. */
export interface ReplicatePort {
  /** Makes sure the private destination model exists (GET, create on 404; a concurrent create is fine). */
  ensureModel(model: string): Promise<void>;
  /** Not retried on 5xx: a create that failed may have created a run, and a second would train (and bill) twice. */
  createTraining(req: TrainingRequest): Promise<ReplicateTraining>;
  getTraining(id: string): Promise<ReplicateTraining>;
  cancelTraining(id: string): Promise<ReplicateTraining>;
  /** The id of the model's latest version (the trained weights, for a per-version model), or null. */
  latestVersion(model: string): Promise<string | null>;
}
