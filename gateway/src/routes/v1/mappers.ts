import { common, type billing } from '@atelier/protos';

// The resources' REST shapes live in the kit: the services announce events in the same shape.
export { runStatus, toPaymentJson, toPromptJson, toVersionJson } from '@atelier/kit';

const FINISHED: ReadonlySet<common.RunStatus> = new Set([
  common.RunStatus.RUN_STATUS_SUCCEEDED,
  common.RunStatus.RUN_STATUS_FAILED,
  common.RunStatus.RUN_STATUS_CANCELED,
]);

/** A run (prompt or training) that will not change any more: a waiting client can stop waiting. */
export const isFinished = (status: common.RunStatus) => FINISHED.has(status);

export const toPlanJson = (p: billing.Plan) => ({
  id: p.id,
  name: p.name,
  description: p.description,
  price: p.price,
  currency: p.currency,
  images: p.images,
  is_init: p.isInit,
  min_images: p.minImages,
  max_images: p.maxImages,
});
