import { Errors, createReplicateClient, replicateError, webhookSecret, type Metrics } from '@atelier/kit';
import type { Predictions } from '../domain/ports';
import type { Prediction } from '../domain/prompt.model';
import { parsePrediction } from '../domain/prompt.rules';

/** Replicate predictions through the official client (pointed at the sandbox by baseUrl in dev and tests). */
export function createReplicatePredictions(opts: {
  token: string;
  baseUrl?: string;
  timeoutMs: number;
  webhookSecret?: string;
  metrics?: Metrics;
}): Predictions {
  const client = createReplicateClient({
    token: opts.token,
    baseUrl: opts.baseUrl,
    timeoutMs: opts.timeoutMs,
    metrics: opts.metrics,
  });
  const asPrediction = (value: unknown): Prediction => {
    const p = parsePrediction(value);
    if (!p) throw Errors.unavailable('replicate (answered something that is not a prediction)');
    return p;
  };
  const call = async (fn: () => Promise<unknown>): Promise<Prediction> => {
    let value: unknown;
    try {
      value = await fn();
    } catch (err) {
      throw replicateError(err);
    }
    return asPrediction(value);
  };
  return {
    create: (r) =>
      call(() =>
        client.predictions.create({
          version: r.version,
          input: r.input,
          webhook: r.webhook,
          webhook_events_filter: r.webhookEventsFilter as Array<'start' | 'output' | 'logs' | 'completed'>,
        }),
      ),
    get: (id) => call(() => client.predictions.get(id)),
    cancel: (id) => call(() => client.predictions.cancel(id)),
    webhookSecret: () => webhookSecret(client, opts.webhookSecret),
  };
}
