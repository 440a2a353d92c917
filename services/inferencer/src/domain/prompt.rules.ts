import { Errors } from '@atelier/kit';
import type { Outcome, Prediction, PromptParams, PromptStatus } from './prompt.model';

/**
 * Limits of each parameter. The gateway checks the same ranges for its 400s; they are checked
 * again here because inferencer is the contract's owner and other callers exist (admin, tests).
 */
export const LIMITS = {
  prompt: 2000,
  numOutputs: [1, 4],
  side: [256, 2048],
  steps: [1, 100],
  guidance: [0, 30],
  seed: [0, 2_147_483_647],
} as const;

/** Every problem of the parameters in one 400, not the first one only. */
export function validateParams(p: PromptParams): PromptParams {
  const problems: string[] = [];
  const int = (
    name: string,
    v: number | undefined,
    [min, max]: readonly [number, number],
    multipleOf = 1,
  ) => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < min || v > max || v % multipleOf !== 0) {
      problems.push(
        `${name} must be an integer in ${min}..${max}${multipleOf > 1 ? ` and a multiple of ${multipleOf}` : ''}, got ${v}`,
      );
    }
  };
  const prompt = p.prompt.trim();
  if (!prompt) problems.push('prompt must not be empty');
  if (p.prompt.length > LIMITS.prompt) problems.push(`prompt is longer than ${LIMITS.prompt} characters`);
  if (p.negativePrompt.length > LIMITS.prompt)
    problems.push(`negative_prompt is longer than ${LIMITS.prompt} characters`);
  int('num_outputs', p.numOutputs, LIMITS.numOutputs);
  int('width', p.width, LIMITS.side, 8);
  int('height', p.height, LIMITS.side, 8);
  int('num_inference_steps', p.numInferenceSteps, LIMITS.steps);
  int('seed', p.seed, LIMITS.seed);
  const g = p.guidanceScale;
  if (g !== undefined && !(Number.isFinite(g) && g >= LIMITS.guidance[0] && g <= LIMITS.guidance[1])) {
    problems.push(
      `guidance_scale must be a number in ${LIMITS.guidance[0]}..${LIMITS.guidance[1]}, got ${g}`,
    );
  }
  if (problems.length) throw Errors.invalid(problems.join('; '), { errors: problems });
  return { ...p, prompt };
}

/** The side used when only the other one is given: the model's default size. */
const DEFAULT_SIDE = 1024;

/**
 * The trained model's input (a Flux LoRA, as the trainer's default ostris/flux-dev-lora-trainer
 * produces): every parameter the customer gave, under the model's names. A size is sent as
 * `aspect_ratio: "custom"` with `width`/`height` (Flux ignores width/height otherwise); without
 * a size the model's default aspect ratio applies. Unset parameters are left to the model's
 * defaults rather than guessed here.
 */
export function toModelInput(p: PromptParams): Record<string, unknown> {
  const input: Record<string, unknown> = { prompt: p.prompt, num_outputs: p.numOutputs };
  if (p.negativePrompt) input.negative_prompt = p.negativePrompt;
  if (p.width !== undefined || p.height !== undefined) {
    input.aspect_ratio = 'custom';
    input.width = p.width ?? DEFAULT_SIDE;
    input.height = p.height ?? DEFAULT_SIDE;
  }
  if (p.numInferenceSteps !== undefined) input.num_inference_steps = p.numInferenceSteps;
  if (p.guidanceScale !== undefined) input.guidance_scale = p.guidanceScale;
  if (p.seed !== undefined) input.seed = p.seed;
  return input;
}

/** Replicate takes a bare version id; trainer may store `owner/name:version`. */
export function versionIdOf(replicateVersion: string): string {
  const colon = replicateVersion.lastIndexOf(':');
  return colon === -1 ? replicateVersion : replicateVersion.slice(colon + 1);
}

/** Where a prompt's outputs live in the bucket: `outputs/<account>/<version>/<prompt>/<n>.<ext>`. */
export function outputKeyPrefix(accountId: string, versionId: string, promptId: string): string {
  return `outputs/${accountId}/${versionId}/${promptId}`;
}

/** The parent of every output of one version's prompts. */
export function versionOutputPrefix(accountId: string, versionId: string): string {
  return `outputs/${accountId}/${versionId}`;
}

/** Estimated Replicate cost in micro-units of the billing currency, from its predict_time. */
export function costMicros(predictTime: number | null, pricePerSecondMicros: number): number | null {
  if (predictTime === null || !Number.isFinite(predictTime) || predictTime < 0) return null;
  return Math.round(predictTime * pricePerSecondMicros);
}

const REPLICATE_STATUSES: ReadonlySet<string> = new Set([
  'starting',
  'processing',
  'succeeded',
  'failed',
  'canceled',
]);

/** A webhook body or API answer as a Prediction; undefined when it is not one. */
export function parsePrediction(value: unknown): Prediction | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'string' || !v.id || typeof v.status !== 'string' || !REPLICATE_STATUSES.has(v.status))
    return undefined;
  const metrics =
    typeof v.metrics === 'object' && v.metrics !== null ? (v.metrics as { predict_time?: number }) : null;
  return { id: v.id, status: v.status as PromptStatus, output: v.output, error: v.error, metrics };
}

/** A model returns one URL or a list of them. */
export function outputUrls(output: unknown): string[] {
  const list = Array.isArray(output) ? output : output === null || output === undefined ? [] : [output];
  return list.filter((u): u is string => typeof u === 'string' && /^https?:\/\//.test(u));
}

/** The outcome a terminal prediction means for its prompt; undefined while it runs. */
export function outcomeOf(p: Prediction): Outcome | undefined {
  const predictTime = typeof p.metrics?.predict_time === 'number' ? p.metrics.predict_time : null;
  switch (p.status) {
    case 'succeeded':
      return { status: 'succeeded', outputs: outputUrls(p.output), predictTime };
    case 'failed':
      return {
        status: 'failed',
        error: errorText(p.error) || 'the prediction failed',
        predictTime,
        reason: 'replicate',
      };
    case 'canceled':
      return { status: 'canceled', error: 'canceled', predictTime, reason: 'canceled' };
    default:
      return undefined;
  }
}

function errorText(error: unknown): string {
  if (typeof error === 'string') return error.slice(0, 2000);
  if (error === null || error === undefined) return '';
  return JSON.stringify(error).slice(0, 2000);
}

// Paging lives in the kit (one home for every listing); re-exported for existing callers.
export { decodeCursor, encodeCursor, pageSize } from '@atelier/kit';
