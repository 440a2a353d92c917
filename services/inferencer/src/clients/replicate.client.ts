import { Errors, type ReplicateAdapter } from '@atelier/kit';
import type { Predictions } from '../domain/ports';
import type { Prediction } from '../domain/prompt.model';
import { parsePrediction } from '../domain/prompt.rules';

/** Replicate predictions through the kit's adapter (pointed at the sandbox by baseUrl in dev and tests). */
export function createReplicatePredictions(replicate: ReplicateAdapter): Predictions {
  const asPrediction = (value: unknown): Prediction => {
    const p = parsePrediction(value);
    if (!p) throw Errors.unavailable('replicate (answered something that is not a prediction)');
    return p;
  };
  return {
    create: async (r) =>
      asPrediction(
        await replicate.call((c) =>
          c.predictions.create({
            version: r.version,
            input: r.input,
            webhook: r.webhook,
            webhook_events_filter: r.webhookEventsFilter as Array<'start' | 'output' | 'logs' | 'completed'>,
          }),
        ),
      ),
    get: async (id) => asPrediction(await replicate.call((c) => c.predictions.get(id))),
    cancel: async (id) =>
      asPrediction(await replicate.call((c) => c.predictions.cancel(id), { idempotent: true })),
  };
}
