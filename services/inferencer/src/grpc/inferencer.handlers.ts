import { currentContext, type AsyncService } from '@atelier/kit';
import type { inferencer } from '@atelier/protos';
import type { PredictionEventService } from '../domain/prediction-event.service';
import type { PromptService } from '../domain/prompt.service';
import { fromParams, toProtoPrompt } from './inferencer.mappers';

export interface InferencerDomain {
  prompts: PromptService;
  events: PredictionEventService;
}

/** Thin: proto in, domain call, proto out. Errors are mapped to gRPC statuses by the kit. */
export function inferencerHandlers(
  d: InferencerDomain,
): AsyncService<typeof inferencer.InferencerServiceService> {
  return {
    async createPrompt(req, ctx) {
      const { prompt, imagesRemaining } = await d.prompts.create(
        {
          accountId: req.accountId,
          versionId: req.versionId,
          promptId: req.promptId,
          params: fromParams(req.params),
          waitSeconds: req.waitSeconds,
          callbackUrl: req.callbackUrl,
          maxRunning: req.maxRunning,
        },
        { deadline: currentContext()?.deadline, signal: ctx.signal },
      );
      return { prompt: toProtoPrompt(prompt), imagesRemaining };
    },
    async getPrompt(req) {
      return { prompt: toProtoPrompt(await d.prompts.get(req.accountId, req.promptId)) };
    },
    async listPrompts(req) {
      const page = await d.prompts.list(req.accountId, req.versionId, req.limit, req.cursor);
      return { prompts: page.prompts.map(toProtoPrompt), nextCursor: page.nextCursor };
    },
    async cancelPrompt(req) {
      return { prompt: toProtoPrompt(await d.prompts.cancel(req.accountId, req.promptId)) };
    },
    async handleReplicateEvent(req) {
      return d.events.handle(req);
    },
  };
}
