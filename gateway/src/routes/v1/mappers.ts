import type { billing } from '@atelier/protos';

// The resources' REST shapes live in the kit: the services announce events in the same shape.
export { runStatus, toPaymentJson, toPromptJson, toVersionJson } from '@atelier/kit';

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
