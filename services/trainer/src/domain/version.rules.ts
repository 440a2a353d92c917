/**
 * The rules of a version's life, free of I/O so they can be tested alone. Webhooks, the
 * reconciler and cancel all decide what changes through planTransition: one code path, so a
 * late or duplicated report can never move a version backwards.
 */

export type VersionStatus = 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
export const VERSION_STATUSES: readonly VersionStatus[] = [
  'starting',
  'processing',
  'succeeded',
  'failed',
  'canceled',
];

// Replicate's order of events. The three terminal states share a rank: once one is reached,
// no other report (a late `completed` of another kind, a stale poll) replaces it.
const RANK: Record<VersionStatus, number> = {
  starting: 0,
  processing: 1,
  succeeded: 2,
  failed: 2,
  canceled: 2,
};

export const isTerminal = (s: VersionStatus): boolean => RANK[s] === 2;

/** Only forwards: starting → processing → one terminal state, skipping steps allowed. */
export const canTransition = (from: VersionStatus, to: VersionStatus): boolean => RANK[to] > RANK[from];

/** What Replicate (or our own decision: timeout, cancel) says about a training. */
export interface TrainingObservation {
  status: VersionStatus;
  startedAt?: Date | null;
  completedAt?: Date | null;
  error?: string | null;
  /** Replicate's metrics.predict_time, in seconds: what it bills. */
  predictTime?: number | null;
  /** output.version: "owner/name:version_id" of the pushed weights. */
  outputVersion?: string | null;
}

/** The state planTransition reads. */
export interface VersionState {
  status: VersionStatus;
  started_at: Date | null;
}

/** Columns a transition writes; each is the complete new value. */
export interface TransitionPatch {
  status: VersionStatus;
  started_at: Date | null;
  completed_at: Date | null;
  error: string | null;
  predict_time: number | null;
  cost_micros: number | null;
  replicate_version: string | null;
}

/**
 * The change an observation makes, or null when it makes none (same status, or backwards).
 * Timestamps prefer Replicate's; when a step was missed (no `start` webhook) they fall back to now.
 */
export function planTransition(
  current: VersionState,
  obs: TrainingObservation,
  opts: { now: Date; pricePerSecondMicros: number },
): TransitionPatch | null {
  if (!canTransition(current.status, obs.status)) return null;
  const terminal = isTerminal(obs.status);
  const predictTime = terminal && isFiniteNonNegative(obs.predictTime) ? obs.predictTime : null;
  return {
    status: obs.status,
    started_at: current.started_at ?? obs.startedAt ?? (obs.status === 'starting' ? null : opts.now),
    completed_at: terminal ? (obs.completedAt ?? opts.now) : null,
    error:
      obs.status === 'failed' ? (obs.error?.trim() || 'training failed at Replicate').slice(0, 2000) : null,
    predict_time: predictTime,
    cost_micros: predictTime === null ? null : estimateCostMicros(predictTime, opts.pricePerSecondMicros),
    replicate_version: obs.status === 'succeeded' ? trainedVersionId(obs.outputVersion) : null,
  };
}

function estimateCostMicros(seconds: number, pricePerSecondMicros: number): number {
  return Math.max(0, Math.round(seconds * pricePerSecondMicros));
}

/** "owner/name:abc123" → "abc123"; a bare id stays as it is; anything else → null. */
export function trainedVersionId(outputVersion: string | null | undefined): string | null {
  if (!outputVersion) return null;
  const id = outputVersion.includes(':')
    ? outputVersion.slice(outputVersion.lastIndexOf(':') + 1)
    : outputVersion;
  return /^[A-Za-z0-9]{8,128}$/.test(id) ? id : null;
}

/**
 * The destination model of one version: `<owner>/v-<version id>`. One private model per version
 * rather than per account because (1) the model's only versions are this training's, so "the
 * trained weights exist" is simply "the model has a version" — with a shared model, concurrent
 * trainings of one account push to one version list and "latest" says nothing; (2) one model is
 * one customer's one subject, so removing a customer's data is deleting their models, and no
 * two subjects (their dog, themselves) share a model page; (3) concurrent starts never
 * race to create the same model. Replicate bills fine-tunes per run, not per model.
 */
export function destinationModel(owner: string, versionId: string): string {
  return `${owner}/v-${versionId.toLowerCase()}`;
}

/** Replicate's time when it reported one, else the wall-clock time between start and end. */
export function trainingSeconds(v: {
  predict_time: number | null;
  started_at: Date | null;
  completed_at: Date | null;
}): number | null {
  if (v.predict_time !== null) return v.predict_time;
  if (v.started_at && v.completed_at)
    return Math.max(0, (v.completed_at.getTime() - v.started_at.getTime()) / 1000);
  return null;
}

export const isReady = (v: { status: VersionStatus; pushed_at: Date | null }): boolean =>
  v.status === 'succeeded' && v.pushed_at !== null;

/**
 * A Replicate training object (webhook body or GET /v1/trainings/{id}) as an observation;
 * undefined when it is not one (no id, or a status we do not know).
 */
export function parseTraining(body: unknown): (TrainingObservation & { id: string }) | undefined {
  if (!isObject(body) || typeof body.id !== 'string' || !body.id) return undefined;
  const status = body.status;
  if (typeof status !== 'string' || !(VERSION_STATUSES as readonly string[]).includes(status))
    return undefined;
  const metrics = isObject(body.metrics) ? body.metrics : {};
  const output = isObject(body.output) ? body.output : {};
  return {
    id: body.id,
    status: status as VersionStatus,
    startedAt: date(body.started_at),
    completedAt: date(body.completed_at),
    error:
      typeof body.error === 'string' ? body.error : body.error == null ? null : JSON.stringify(body.error),
    predictTime: typeof metrics.predict_time === 'number' ? metrics.predict_time : null,
    outputVersion: typeof output.version === 'string' ? output.version : null,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function date(v: unknown): Date | null {
  if (typeof v !== 'string') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

function isFiniteNonNegative(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/**
 * The subject's class (`man`, `woman`, `dog`) and the trigger word the prompts use: the one
 * definition of both. The gateway forwards them and maps trainer's answer.
 */
const CLASS_NAME_RULE = {
  pattern: /^[a-z][a-z -]{0,30}$/i,
  message: 'class must be a word such as man, woman or dog (a letter, then up to 30 letters, spaces or -)',
} as const;
const TRIGGER_WORD_RULE = {
  pattern: /^[A-Za-z0-9_]{2,32}$/,
  message: 'trigger_word must be 2–32 letters, digits or _',
} as const;
/** Replicate's LoRA trainers' own default token. */
export const DEFAULT_TRIGGER_WORD = 'TOK';

/** Both labels checked at once: every problem, or the trimmed values. */
export function checkLabels(
  className: string,
  triggerWord: string,
): { ok: true; className: string; triggerWord: string } | { ok: false; problems: string[] } {
  const c = className.trim();
  const t = triggerWord.trim();
  const problems: string[] = [];
  if (!CLASS_NAME_RULE.pattern.test(c)) problems.push(CLASS_NAME_RULE.message);
  if (!TRIGGER_WORD_RULE.pattern.test(t)) problems.push(TRIGGER_WORD_RULE.message);
  return problems.length ? { ok: false, problems } : { ok: true, className: c, triggerWord: t };
}
