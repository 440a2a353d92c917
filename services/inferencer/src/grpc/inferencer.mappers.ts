import { Errors } from '@atelier/kit';
import { common, type inferencer } from '@atelier/protos';
import type { Offer, Pack, Run } from '../domain/offer.model';
import { packPrice, variablesOf } from '../domain/offer.rules';
import type { Prompt, PromptParams, PromptStatus } from '../domain/prompt.model';

const STATUS: Record<PromptStatus, common.RunStatus> = {
  starting: common.RunStatus.RUN_STATUS_STARTING,
  processing: common.RunStatus.RUN_STATUS_PROCESSING,
  succeeded: common.RunStatus.RUN_STATUS_SUCCEEDED,
  failed: common.RunStatus.RUN_STATUS_FAILED,
  canceled: common.RunStatus.RUN_STATUS_CANCELED,
};

export function fromParams(p: inferencer.PromptParams | undefined): PromptParams {
  if (!p) throw Errors.invalid('params is required');
  return {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    numOutputs: p.numOutputs,
    width: p.width,
    height: p.height,
    numInferenceSteps: p.numInferenceSteps,
    guidanceScale: p.guidanceScale,
    seed: p.seed,
  };
}

export function toProtoPrompt(p: Prompt): inferencer.Prompt {
  return {
    promptId: p.id,
    versionId: p.versionId,
    accountId: p.accountId,
    status: STATUS[p.status],
    params: { ...p.params },
    images: p.images.map((i) => ({ ...i })),
    createdAt: p.createdAt,
    completedAt: p.completedAt ?? undefined,
    predictTime: p.predictTime ?? undefined,
    error: p.error ?? '',
    costMicros: p.costMicros ?? 0,
  };
}

export function toProtoOffer(o: Offer): inferencer.Offer {
  return {
    offerId: o.id,
    name: o.name,
    template: o.template,
    negativeTemplate: o.negativeTemplate,
    priceCredits: o.priceCredits,
    createQty: o.createQty,
    params: { ...o.params },
    resultExpiryDays: o.resultExpiryDays ?? undefined,
    active: o.active,
    variables: variablesOf(o.template, o.negativeTemplate),
  };
}

export function fromProtoOffer(o: inferencer.Offer | undefined): Offer {
  if (!o) throw Errors.invalid('offer is required');
  return {
    id: o.offerId,
    name: o.name,
    template: o.template,
    negativeTemplate: o.negativeTemplate,
    priceCredits: o.priceCredits,
    createQty: o.createQty,
    params: { ...o.params },
    resultExpiryDays: o.resultExpiryDays ?? null,
    active: o.active,
  };
}

export function toProtoPack(p: Pack, offers: Offer[]): inferencer.Pack {
  const byId = new Map(offers.map((o) => [o.id, o]));
  const mine = p.offerIds.map((id) => byId.get(id)).filter((o): o is Offer => o !== undefined);
  return {
    packId: p.id,
    name: p.name,
    offerIds: p.offerIds,
    fixedPriceCredits: p.priceCredits ?? undefined,
    discountPercent: p.discountPercent,
    active: p.active,
    priceCredits: packPrice(p, mine),
    variables: variablesOf(...mine.flatMap((o) => [o.template, o.negativeTemplate])),
  };
}

export function fromProtoPack(p: inferencer.Pack | undefined): Pack {
  if (!p) throw Errors.invalid('pack is required');
  return {
    id: p.packId,
    name: p.name,
    offerIds: p.offerIds,
    priceCredits: p.fixedPriceCredits ?? null,
    discountPercent: p.discountPercent,
    active: p.active,
  };
}

export function toProtoRun(r: Run, prompts: Prompt[]): inferencer.Run {
  return {
    runId: r.id,
    accountId: r.accountId,
    versionId: r.versionId,
    kind: r.kind,
    refId: r.refId,
    variables: { ...r.variables },
    priceCredits: r.priceCredits,
    imagesExpected: r.imagesExpected,
    prompts: prompts.map(toProtoPrompt),
    createdAt: r.createdAt,
    settledCredits: r.settledCredits ?? undefined,
  };
}
