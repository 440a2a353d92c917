import { Errors } from '@atelier/kit';
import { common, type inferencer } from '@atelier/protos';
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
