import { currentContext, type AsyncService } from '@atelier/kit';
import type { inferencer } from '@atelier/protos';
import type { OfferService, RunResult } from '../domain/offer.service';
import type { PredictionEventService } from '../domain/prediction-event.service';
import type { PromptErasureService } from '../domain/prompt-erasure.service';
import type { CallLimits, PromptService } from '../domain/prompt.service';
import {
  fromParams,
  fromProtoOffer,
  fromProtoPack,
  toProtoOffer,
  toProtoPack,
  toProtoPrompt,
  toProtoRun,
} from './inferencer.mappers';

export interface InferencerDomain {
  prompts: PromptService;
  events: PredictionEventService;
  offers: OfferService;
  erasure: PromptErasureService;
}

/** The call's deadline and cancellation, for the use cases that wait on Replicate. */
const callLimits = (ctx: { signal: AbortSignal }): CallLimits => ({
  deadline: currentContext()?.deadline,
  signal: ctx.signal,
});

const toRunResponse = (r: RunResult) => ({
  run: toProtoRun(r.run, r.prompts),
  duplicate: r.duplicate,
  imagesRemaining: r.imagesRemaining,
});

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
        callLimits(ctx),
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
    async listOffers(req) {
      return { offers: (await d.offers.listOffers(req.includeInactive)).map(toProtoOffer) };
    },
    async upsertOffer(req) {
      return { offer: toProtoOffer(await d.offers.upsertOffer(fromProtoOffer(req.offer))) };
    },
    async listPacks(req) {
      const [packs, offers] = await Promise.all([
        d.offers.listPacks(req.includeInactive),
        d.offers.listOffers(true),
      ]);
      return { packs: packs.map((p) => toProtoPack(p, offers)) };
    },
    async upsertPack(req) {
      const pack = await d.offers.upsertPack(fromProtoPack(req.pack));
      return { pack: toProtoPack(pack, await d.offers.listOffers(true)) };
    },
    // The requests carry exactly the use case's input (ids, variables, the tier's cap).
    async runOffer(req, ctx) {
      return toRunResponse(await d.offers.runOffer(req, callLimits(ctx)));
    },
    async runPack(req, ctx) {
      return toRunResponse(await d.offers.runPack(req, callLimits(ctx)));
    },
    async getRun(req) {
      const { run, prompts } = await d.offers.getRun(req.accountId, req.runId);
      return { run: toProtoRun(run, prompts) };
    },
    async eraseVersionPrompts(req) {
      return { erased: await d.erasure.eraseVersion(req.accountId, req.versionId) };
    },
  };
}
