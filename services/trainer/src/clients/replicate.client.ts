import { Errors, replicateStatusOf, type ReplicateAdapter } from '@atelier/kit';
import type { ReplicatePort, ReplicateTraining } from '../domain/ports';
import { parseTraining } from '../domain/version.rules';

/**
 * A create Replicate answers 404 names something of ours that does not exist (the trainer
 * version, the destination's owner): our configuration's fault, so a 500 for the customer (never
 * "404 not found" about their payment) and an error in our logs. The kit makes other refusals 500.
 */
function refusedIsOurs(err: unknown): never {
  if (replicateStatusOf(err) === 404)
    throw Errors.internal(`Replicate refused the request (404): ${(err as Error).message}`);
  throw err;
}

function splitModel(model: string): [string, string] {
  const [owner, name, ...rest] = model.split('/');
  if (!owner || !name || rest.length)
    throw Errors.invalid(`model must be owner/name, got ${JSON.stringify(model)}`);
  return [owner, name];
}

function training(body: unknown): ReplicateTraining {
  const parsed = parseTraining(body);
  if (!parsed) throw Errors.unavailable('replicate (unexpected training object)');
  return parsed;
}

/** Trainer's use of Replicate through the kit's adapter; `idempotent` marks the POSTs safe to repeat. */
export function createReplicateTrainings(
  replicate: ReplicateAdapter,
  opts: { hardware: string },
): ReplicatePort {
  const { call } = replicate;
  return {
    async ensureModel(model) {
      const [owner, name] = splitModel(model);
      try {
        await call((c) => c.models.get(owner, name));
        return;
      } catch (err) {
        if (replicateStatusOf(err) !== 404) throw err;
      }
      try {
        // Safe to retry: a second create of one name answers 409, which means it exists.
        await call(
          (c) =>
            c.models.create(owner, name, {
              visibility: 'private',
              hardware: opts.hardware,
              description: 'Atelier fine-tune',
            }),
          { idempotent: true },
        );
      } catch (err) {
        if (replicateStatusOf(err) !== 409) refusedIsOurs(err);
      }
    },
    async createTraining(req) {
      const [owner, name] = splitModel(req.trainer.model);
      const created = await call((c) =>
        c.trainings.create(owner, name, req.trainer.version, {
          destination: req.destination as `${string}/${string}`,
          input: req.input,
          webhook: req.webhook,
          webhook_events_filter: req.webhookEventsFilter,
        }),
      ).catch(refusedIsOurs);
      return training(created);
    },
    async getTraining(id) {
      return training(await call((c) => c.trainings.get(id)));
    },
    async cancelTraining(id) {
      return training(await call((c) => c.trainings.cancel(id), { idempotent: true }));
    },
    async latestVersion(model) {
      const [owner, name] = splitModel(model);
      const found = await call((c) => c.models.get(owner, name));
      return found.latest_version?.id ?? null;
    },
    async deleteModel(model) {
      const [owner, name] = splitModel(model);
      const base = `/models/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
      let versions: string[];
      try {
        const page = await call((c) => c.models.versions.list(owner, name));
        versions = (page.results ?? []).map((v) => v.id);
      } catch (err) {
        if (replicateStatusOf(err) === 404) return 'deleted';
        throw err;
      }
      // The official client has no delete calls; request() is its documented way to reach the
      // rest of the API, with the same auth, base URL and fetch (metrics, timeouts, Retry-After).
      const remove = async (path: string) => {
        try {
          await call((c) => c.request(path, { method: 'DELETE' }), { idempotent: true });
        } catch (err) {
          if (replicateStatusOf(err) !== 404) throw err;
        }
      };
      for (const id of versions) await remove(`${base}/versions/${encodeURIComponent(id)}`);
      try {
        await remove(base);
        return 'deleted';
      } catch (err) {
        // Version deletions are accepted (202) and processed within minutes; until then Replicate
        // refuses to delete the model. Any other refusal is retried too, and shows in last_error.
        const status = replicateStatusOf(err);
        if (status !== undefined && status >= 400 && status < 500 && status !== 429) return 'pending';
        throw err;
      }
    },
  };
}
