/** What a prompt is, in the service's own terms (no proto, no SQL). */

export type PromptStatus = 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';

export const isActive = (s: PromptStatus) => s === 'starting' || s === 'processing';

/** The customer's parameters, as the API takes them. */
export interface PromptParams {
  prompt: string;
  negativePrompt: string;
  numOutputs: number;
  width?: number;
  height?: number;
  numInferenceSteps?: number;
  guidanceScale?: number;
  seed?: number;
}

/** One output copied into our bucket. */
export interface PromptImage {
  key: string;
  width: number;
  height: number;
  contentType: string;
  bytes: number;
}

export interface Prompt {
  id: string;
  accountId: string;
  versionId: string;
  status: PromptStatus;
  params: PromptParams;
  predictionId: string | null;
  error: string | null;
  createdAt: Date;
  /** created_at to the microsecond, as Postgres has it: the listing cursor needs the exact value. */
  createdKey: string;
  completedAt: Date | null;
  predictTime: number | null;
  costMicros: number | null;
  deadlineAt: Date;
  /** Set when an offer or pack run's single reservation pays for the prompt. */
  runId: string | null;
  /** Set when its version was deleted: the texts are gone and the prompt answers 410. */
  erasedAt: Date | null;
  images: PromptImage[];
  /**
   * The success Replicate's webhook reported, recorded for the claim loop, which copies the
   * outputs and settles (the webhook does neither: it must answer within the gateway's deadline).
   */
  reportedSuccess: Extract<Outcome, { status: 'succeeded' }> | null;
  /** Receives this prompt's events (besides the account's endpoints). */
  callbackUrl: string | null;
}

/** A Replicate prediction as the webhook body or the API describes it (only what we read). */
export interface Prediction {
  id: string;
  status: PromptStatus;
  output: unknown;
  error: unknown;
  metrics?: { predict_time?: number } | null;
}

/** How a prompt ended, with what completion needs to settle it. */
export type Outcome =
  | { status: 'succeeded'; outputs: string[]; predictTime: number | null }
  | { status: 'failed' | 'canceled'; error: string; predictTime: number | null; reason: FailureReason };

/** Bounded label of atelier_run_failures_total. */
export type FailureReason = 'replicate' | 'timeout' | 'transfer' | 'canceled';
