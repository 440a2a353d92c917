/**
 * Public shapes of the Replicate sandbox: the JSON objects it serves (field names and nullability
 * follow Replicate's HTTP API) and the records tests can inspect.
 */

export type RunKind = 'training' | 'prediction';
export type RunStatus = 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
export type WebhookEvent = 'start' | 'output' | 'logs' | 'completed';
export const WEBHOOK_EVENTS: readonly WebhookEvent[] = ['start', 'output', 'logs', 'completed'];
export const TERMINAL: ReadonlySet<RunStatus> = new Set(['succeeded', 'failed', 'canceled']);

export interface ModelVersionObject {
  id: string;
  created_at: string;
  cog_version: string;
  openapi_schema: object | null;
}

export interface ModelObject {
  url: string;
  owner: string;
  name: string;
  description: string | null;
  visibility: 'public' | 'private';
  github_url: string | null;
  paper_url: string | null;
  license_url: string | null;
  cover_image_url: string | null;
  default_example: null;
  run_count: number;
  latest_version: ModelVersionObject | null;
}

export interface RunMetrics {
  predict_time?: number;
  total_time?: number;
}

interface RunObjectBase {
  id: string;
  /** `owner/name` of the model that ran (for a training: the trainer). */
  model: string;
  /** 64-hex version id that ran. */
  version: string;
  input: Record<string, unknown>;
  logs: string;
  error: string | null;
  status: RunStatus;
  source: 'api';
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  urls: { get: string; cancel: string; web?: string };
  metrics: RunMetrics;
  webhook?: string;
  webhook_events_filter?: WebhookEvent[];
}

export interface TrainingObject extends RunObjectBase {
  output: { version: string; weights: string } | null;
}

export interface PredictionObject extends RunObjectBase {
  output: string[] | null;
  data_removed: boolean;
}

export type RunObject = TrainingObject | PredictionObject;

/** The dataset a training downloaded, as the sandbox saw it. */
export interface TrainingDataset {
  url: string;
  bytes: number;
  /** File names inside the zip. */
  entries: string[];
}

/** What a test can read about one run: the public object plus what the sandbox received. */
export interface RunRecord<O extends RunObject = RunObject> {
  kind: RunKind;
  /** Current public state (a copy). `object.input` is the input exactly as Replicate got it. */
  object: O;
  /** The whole create request body as received. */
  body: unknown;
  /** Trainings only: the zip behind the configured input key, once downloaded. */
  dataset?: TrainingDataset;
}

export interface DeliveryAttempt {
  at: string;
  /** `webhook-timestamp` sent with this attempt (unix seconds). */
  timestamp: number;
  /** `webhook-signature` sent with this attempt. */
  signature: string;
  httpStatus?: number;
  error?: string;
}

/** One webhook message (one `webhook-id`), with every attempt to deliver it. */
export interface Delivery {
  webhookId: string;
  kind: RunKind;
  runId: string;
  events: WebhookEvent[];
  url: string;
  /** The exact bytes that were signed and sent. */
  body: string;
  status: 'pending' | 'delivered' | 'failed' | 'dropped' | 'aborted';
  attempts: DeliveryAttempt[];
}

export interface ApiCall {
  at: string;
  method: string;
  path: string;
  status: number;
  /** True when an injected fault answered instead of the API. */
  fault: boolean;
}
