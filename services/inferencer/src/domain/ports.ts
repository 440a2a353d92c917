import type { Prediction, PromptImage } from './prompt.model';

/**
 * What the domain needs from the rest of the mesh and from Replicate. The adapters in
 * src/clients/ implement these over gRPC and the official client; errors arrive as AppError.
 */

/** A trained model as trainer describes it. */
export interface VersionFacts {
  accountId: string;
  isReady: boolean;
  replicateVersion: string;
  triggerWord: string;
  className: string;
}

/** trainer: is this version the caller's, is it ready, and what does it run on at Replicate. */
export interface VersionDirectory {
  /** NOT_FOUND (as AppError) for an unknown or foreign version. */
  getVersion(accountId: string, versionId: string): Promise<VersionFacts>;
}

/** billing: the credit reservation of each prompt (its id is the prompt id) and usage records. */
export interface Credits {
  /** Idempotent per reservation id; insufficient_credits (with `remaining`) when short. Returns what remains. */
  reserve(
    accountId: string,
    versionId: string,
    reservationId: string,
    amount: number,
  ): Promise<{ remaining: number }>;
  /** Keeps `used` credits and gives back the rest; a second settle or release is a no-op. */
  settle(reservationId: string, used: number): Promise<void>;
  /** Gives back the whole reservation; a no-op when it is closed or was never made. */
  release(reservationId: string): Promise<void>;
  /** What remains on the version now. */
  balance(accountId: string, versionId: string): Promise<{ remaining: number }>;
  /** Recorded once per prompt. */
  recordUsage(
    accountId: string,
    promptId: string,
    versionId: string,
    predictSeconds: number,
    costMicros: number,
  ): Promise<void>;
}

/** imager: copies Replicate's outputs into the bucket (`<keyPrefix>/<n>.<ext>`). */
export interface OutputStore {
  transfer(keyPrefix: string, urls: string[]): Promise<PromptImage[]>;
  /** URLs of stored images as GET answers them (presigned, or public); for the events' data. */
  signUrls?(keys: string[]): Promise<string[]>;
  /** Every object under the prefix, every stored version of each; how many went. */
  deleteAll(keyPrefix: string): Promise<number>;
}

/** Replicate predictions. */
export interface Predictions {
  create(request: {
    version: string;
    input: Record<string, unknown>;
    webhook: string;
    webhookEventsFilter: string[];
  }): Promise<Prediction>;
  get(id: string): Promise<Prediction>;
  cancel(id: string): Promise<Prediction>;
}
