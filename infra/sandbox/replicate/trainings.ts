/**
 * `POST /v1/models/{owner}/{name}/versions/{version}/trainings`: the trainer (any owner/name with a
 * well-formed version id) downloads the zip behind `input[zipKey]` and, on success, pushes a new
 * version to the `destination` model.
 */
import { downloadDataset } from './dataset';
import { Problems } from './errors';
import type { Faults } from './faults';
import { now, runId, VERSION_ID } from './ids';
import { isObject, webhookSettings } from './inputs';
import type { ModelStore } from './models';
import { Run, type RunEnv } from './runs';
import type { TrainingObject } from './types';

export interface TrainingEnv extends RunEnv {
  models: ModelStore;
  faults: Faults;
  publicUrl: () => string;
  trainingMs: number;
  zipKey: string;
}

export function createTraining(
  env: TrainingEnv,
  trainer: { owner: string; name: string; version: string },
  body: unknown,
): Run<TrainingObject> {
  if (!VERSION_ID.test(trainer.version)) throw Problems.notFound();
  if (!isObject(body))
    throw Problems.invalid([
      { field: '(root)', description: 'Invalid type. Expected: object', type: 'invalid_type' },
    ]);
  const { destination, input } = body;
  if (typeof destination !== 'string') {
    throw Problems.invalid([
      { field: 'destination', description: 'destination is required', type: 'required' },
    ]);
  }
  const [destOwner = '', destName = '', ...rest] = destination.split('/');
  if (rest.length || !env.models.exists(destOwner, destName)) throw Problems.destinationMissing();
  if (!isObject(input))
    throw Problems.invalid([{ field: 'input', description: 'input is required', type: 'required' }]);
  const zipUrl = input[env.zipKey];
  if (typeof zipUrl !== 'string' || !/^https?:\/\//.test(zipUrl)) {
    throw Problems.invalid([
      { field: 'input', description: `${env.zipKey} is required and must be a URL`, type: 'required' },
    ]);
  }
  const hooks = webhookSettings(body);

  const id = runId();
  const base = env.publicUrl();
  const object: TrainingObject = {
    id,
    model: `${trainer.owner}/${trainer.name}`,
    version: trainer.version,
    input: structuredClone(input),
    logs: '',
    output: null,
    error: null,
    status: 'starting',
    source: 'api',
    created_at: now(),
    started_at: null,
    completed_at: null,
    urls: { get: `${base}/v1/trainings/${id}`, cancel: `${base}/v1/trainings/${id}/cancel` },
    metrics: {},
    ...(hooks.webhook !== undefined ? { webhook: hooks.webhook } : {}),
    ...(hooks.webhook_events_filter ? { webhook_events_filter: hooks.webhook_events_filter } : {}),
  };
  const run = new Run('training', object, body, hooks.events, env.faults.takeRunFailure('training'), env);
  const stepsInput = input.steps ?? input.max_train_steps;
  const steps = typeof stepsInput === 'number' && stepsInput > 0 ? stepsInput : 1000;
  run.start({
    durationMs: env.trainingMs,
    steps,
    work: async (signal, log) => {
      log(`Downloading ${env.zipKey}...`);
      run.dataset = await downloadDataset(env.zipKey, zipUrl, signal);
      const images = run.dataset.entries.filter((n) => /\.(jpe?g|png|webp)$/i.test(n)).length;
      log(`Extracted ${images} images from ${env.zipKey} (${run.dataset.bytes} bytes)`);
    },
    output: () => {
      const version = env.models.pushVersion(destOwner, destName);
      const weights = env.files.put(
        id,
        'trained_model.tar',
        Buffer.from(`sandbox weights for ${destination}:${version.id}\n`),
        'application/x-tar',
      );
      return { version: `${destination}:${version.id}`, weights: `${env.publicUrl()}${weights}` };
    },
  });
  return run;
}
