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
  /** A deleted version's remaining credits are gone; later grants add nothing. Idempotent. */
  forfeitCredits(accountId: string, versionId: string): Promise<void>;
  /** The last step of an account's deletion: keys revoked, email erased. Idempotent. */
  eraseAccount(accountId: string): Promise<void>;
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
  /**
   * Deletes every version of the model, then the model (Replicate refuses to delete a model that
   * still has versions). `pending` when Replicate accepted the version deletions but still holds
   * them (it processes them within minutes): ask again later. `deleted` also for a model that
   * never existed.
   */
  deleteModel(model: string): Promise<'deleted' | 'pending'>;
}

/** inferencer: a deleted version's prompts. */
export interface PromptsPort {
  /** Running prompts canceled, texts erased, image rows removed; how many prompts. Idempotent. */
  eraseVersionPrompts(accountId: string, versionId: string): Promise<number>;
}

/** imager: the bucket. Every stored version of each object goes, noncurrent ones too. */
export interface ObjectsPort {
  deleteDataset(datasetKey: string): Promise<void>;
  /** Everything under `outputs/<account>/<version>/`; how many object versions were removed. */
  deleteOutputs(keyPrefix: string): Promise<number>;
}
