/**
 * `POST /v1/predictions` and `POST /v1/models/{owner}/{name}/predictions`: runs on a version a
 * training pushed, renders `num_outputs` images and serves them as `/files/<id>/out-<i>.<ext>`.
 */
import { Problems } from './errors';
import type { Faults } from './faults';
import { now, runId, VERSION_ID } from './ids';
import { isObject, planPrediction, webhookSettings } from './inputs';
import type { ModelStore } from './models';
import { CONTENT_TYPES, renderImage } from './render';
import { Run, type RunEnv } from './runs';
import type { PredictionObject } from './types';

export interface PredictionEnv extends RunEnv {
  models: ModelStore;
  faults: Faults;
  publicUrl: () => string;
  predictionMs: number;
}

/** `model` is set for the model-scoped route (which runs the model's latest version). */
export function createPrediction(
  env: PredictionEnv,
  body: unknown,
  model?: { owner: string; name: string },
): Run<PredictionObject> {
  if (!isObject(body))
    throw Problems.invalid([
      { field: '(root)', description: 'Invalid type. Expected: object', type: 'invalid_type' },
    ]);
  const { modelName, version } = resolveVersion(env.models, body, model);
  if (!isObject(body.input))
    throw Problems.invalid([{ field: 'input', description: 'input is required', type: 'required' }]);
  const input = body.input;
  const plan = planPrediction(input);
  const hooks = webhookSettings(body);

  const id = runId();
  const base = env.publicUrl();
  const object: PredictionObject = {
    id,
    model: modelName,
    version,
    input: structuredClone(input),
    logs: '',
    output: null,
    data_removed: false,
    error: null,
    status: 'starting',
    source: 'api',
    created_at: now(),
    started_at: null,
    completed_at: null,
    urls: {
      get: `${base}/v1/predictions/${id}`,
      cancel: `${base}/v1/predictions/${id}/cancel`,
      // Replicate's page for the run; required by its published prediction schema.
      web: `https://replicate.com/p/${id}`,
    },
    metrics: {},
    ...(hooks.webhook !== undefined ? { webhook: hooks.webhook } : {}),
    ...(hooks.webhook_events_filter ? { webhook_events_filter: hooks.webhook_events_filter } : {}),
  };
  env.models.countRun(modelName);
  const run = new Run('prediction', object, body, hooks.events, env.faults.takeRunFailure('prediction'), env);
  const images: Buffer[] = [];
  run.start({
    durationMs: env.predictionMs,
    steps: typeof input.num_inference_steps === 'number' ? input.num_inference_steps : 28,
    work: async (signal, log) => {
      log(`Using seed: ${plan.seed}`);
      log(`Prompt: ${plan.prompt}`);
      for (let index = 0; index < plan.numOutputs; index++) {
        if (signal.aborted) return;
        images.push(await renderImage({ ...plan, index }));
      }
      log(`Generated ${plan.numOutputs} image(s) of ${plan.width}x${plan.height}`);
    },
    output: () =>
      images.map((image, i) => {
        const ext = plan.format;
        return `${env.publicUrl()}${env.files.put(id, `out-${i}.${ext}`, image, CONTENT_TYPES[ext])}`;
      }),
  });
  return run;
}

function resolveVersion(
  models: ModelStore,
  body: Record<string, unknown>,
  model?: { owner: string; name: string },
): { modelName: string; version: string } {
  if (model) {
    const latest = models.latestVersion(model.owner, model.name);
    if (!latest) throw Problems.notFound('This model has no versions.');
    return { modelName: `${model.owner}/${model.name}`, version: latest };
  }
  const ref = body.version;
  if (typeof ref !== 'string' || !ref)
    throw Problems.invalid([{ field: 'version', description: 'version is required', type: 'required' }]);
  // Either a bare version id or `owner/name:version`.
  const colon = ref.lastIndexOf(':');
  const version = colon === -1 ? ref : ref.slice(colon + 1);
  const modelName = VERSION_ID.test(version) ? models.modelOfVersion(version) : null;
  if (!modelName || (colon !== -1 && ref.slice(0, colon) !== modelName)) throw Problems.invalidVersion();
  return { modelName, version };
}
