import type { TrainingObservation } from './version.rules';

/** The photo limits of the plan as it was bought. */
export interface PlanAsBought {
  minImages: number;
  maxImages: number;
}

/** What trainer tells billing about a training; billing decides what it means for the payment. */
export type TrainingOutcome = 'running' | 'ready' | 'failed';

/** What the domain needs from billing. Errors arrive as AppError (404/402/409 stay what billing said). */
export interface BillingPort {
  /**
   * Binds a paid, unused init payment of the account to the version and answers the plan as it
   * was bought; answers 404/402/409 itself.
   */
  claimInitPayment(accountId: string, paymentId: string, versionId: string): Promise<PlanAsBought>;
  /** Gives the payment back, only if this version still holds it (its training never existed). */
  releaseInitPayment(paymentId: string, versionId: string): Promise<boolean>;
  /**
   * Reports what happened to the training; billing grants (ready), gives the payment back
   * (failed) or neither, and says whether the training may go on. Repeating a report is a no-op.
   */
  reportOutcome(
    v: { accountId: string; paymentId: string; versionId: string },
    outcome: TrainingOutcome,
  ): Promise<{ keepTraining: boolean }>;
  /** A deleted version's remaining credits are gone; later grants add nothing. Idempotent. */
  forfeitCredits(accountId: string, versionId: string): Promise<void>;
  /** The last step of an account's deletion: keys revoked, email erased. Idempotent. */
  eraseAccount(accountId: string): Promise<void>;
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
  /** `timeoutMs`: a caller that must not wait long (a failed start's cleanup) says how long it waits. */
  deleteDataset(datasetKey: string, call?: { timeoutMs?: number }): Promise<void>;
  /** Everything under `outputs/<account>/<version>/`; how many object versions were removed. */
  deleteOutputs(keyPrefix: string): Promise<number>;
}

/** One photo's problem, as imager found it. */
export interface PhotoProblem {
  file: string;
  index: number;
  code: string;
  detail: string;
}

/** A part of the photo stream after its header: a photo's start, its bytes, or the end marker. */
export type PhotoPart =
  | { fileStart: { index: number; filename: string; contentType: string } }
  | { chunk: Uint8Array }
  | { end: { files: number } };

export type PackedDataset =
  | { ok: false; problems: PhotoProblem[] }
  | { ok: true; datasetKey: string; datasetUrl: string; images: number };

/** One dataset being packed by imager; nothing is stored unless `finish` answers ok. */
export interface DatasetUpload {
  write(part: PhotoPart): Promise<void>;
  /** After the end marker was written: every problem of every photo, or the stored dataset. */
  finish(): Promise<PackedDataset>;
  /** Stops the upload; imager stores nothing. */
  cancel(): void;
}

/** What the domain needs from imager. Failures are AppErrors (503 bucket trouble, 504 silence). */
export interface DatasetPort {
  open(header: { accountId: string; datasetId: string; minImages: number; maxImages: number }): DatasetUpload;
}
