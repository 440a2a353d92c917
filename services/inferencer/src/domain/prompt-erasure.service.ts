import { requireUuid, type Logger } from '@atelier/kit';
import type { Store } from '../repositories';
import type { PromptCompletion } from './prompt-completion.service';
import type { OutputStore, Predictions } from './ports';
import { versionOutputPrefix } from './prompt.rules';

export interface PromptErasureDeps {
  store: Store;
  completion: PromptCompletion;
  predictions: Predictions;
  outputs: OutputStore;
  logger: Logger;
}

/**
 * A deleted version's prompts (trainer's deletion job asks, and asks again until it succeeds, so
 * every step is idempotent): running ones stop and give their credits back, every output object
 * leaves the bucket, the texts (and offer and pack variables) are erased and the image rows removed. The rows stay, without
 * anything the customer wrote, for the timings and costs that accounting keeps.
 */
export class PromptErasureService {
  constructor(private readonly d: PromptErasureDeps) {}

  async eraseVersion(accountId: string, versionId: string): Promise<number> {
    const account = requireUuid('account_id', accountId);
    const version = requireUuid('version_id', versionId);
    const { store, completion, predictions, outputs, logger } = this.d;
    for (const prompt of await store.repos.prompts.listActiveOfVersion(account, version)) {
      // Deleting the model at Replicate stops its predictions too; this is for a sandbox or a
      // Replicate that is slow to: a failure here changes nothing that follows.
      if (prompt.predictionId)
        await predictions
          .cancel(prompt.predictionId)
          .catch((err: unknown) =>
            logger.warn(
              { err, prompt_id: prompt.id },
              'could not cancel the prediction of a deleted version',
            ),
          );
      await completion.finish(prompt, {
        status: 'canceled',
        error: 'the version was deleted',
        predictTime: null,
        reason: 'canceled',
      });
    }
    const objects = await outputs.deleteAll(versionOutputPrefix(account, version));
    const erased = await store.transaction(async (repos) => {
      await repos.images.deleteOfVersion(account, version);
      await repos.runs.eraseVersion(account, version);
      return repos.prompts.eraseVersion(account, version);
    });
    logger.info({ version_id: version, prompts: erased, objects }, 'prompts of a deleted version erased');
    return erased;
  }
}
