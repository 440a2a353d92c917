import { billing, common, inferencer, trainer } from '@atelier/protos';

/**
 * The REST representation of each resource, from its proto message. The gateway answers GETs
 * with these and the services put the same shape in the `data` of the events they announce, so
 * a callback's resource is exactly what GET returns.
 */

const iso = (d: Date | undefined) => (d ? d.toISOString() : null);

/** PAYMENT_STATUS_PAID → paid */
const enumName = (full: string, prefix: string) => full.slice(prefix.length).toLowerCase();

export const runStatus = (s: common.RunStatus) => enumName(common.runStatusToJSON(s), 'RUN_STATUS_');

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

export const toOfferJson = (o: inferencer.Offer) => ({
  offer_id: o.offerId,
  name: o.name,
  template: o.template,
  negative_template: o.negativeTemplate,
  price_credits: o.priceCredits,
  create_qty: o.createQty,
  params: {
    width: o.params?.width,
    height: o.params?.height,
    num_inference_steps: o.params?.numInferenceSteps,
    guidance_scale: o.params?.guidanceScale,
  },
  result_expiry_days: o.resultExpiryDays ?? null,
  variables: o.variables,
});

export const toPaymentJson = (p: billing.Payment) => ({
  payment_id: p.paymentId,
  checkout_url: p.checkoutUrl,
  status: enumName(billing.paymentStatusToJSON(p.status), 'PAYMENT_STATUS_'),
  plan_id: p.planId,
  version_id: p.versionId ?? null,
  amount: p.amount,
  currency: p.currency,
  promocode_applied: p.promocodeApplied,
  expires_at: iso(p.expiresAt),
  created_at: iso(p.createdAt),
  paid_at: iso(p.paidAt),
});

export const toVersionJson = (v: trainer.Version, balance: billing.CreditBalance | undefined) => ({
  version_id: v.versionId,
  status: runStatus(v.status),
  is_ready: v.isReady,
  class: v.className,
  trigger_word: v.triggerWord,
  model: v.model,
  created_at: iso(v.createdAt),
  started_at: iso(v.startedAt),
  completed_at: iso(v.completedAt),
  pushed_at: iso(v.pushedAt),
  training_seconds: v.trainingSeconds ?? null,
  error: v.error || null,
  images: { granted: balance?.granted ?? 0, used: balance?.used ?? 0, remaining: balance?.remaining ?? 0 },
});

export const toPromptJson = (p: inferencer.Prompt, urls: string[]) => {
  const params = p.params;
  return {
    prompt_id: p.promptId,
    version_id: p.versionId,
    status: runStatus(p.status),
    prompt: params?.prompt ?? '',
    negative_prompt: params?.negativePrompt ?? '',
    params: {
      num_outputs: params?.numOutputs,
      width: params?.width,
      height: params?.height,
      num_inference_steps: params?.numInferenceSteps,
      guidance_scale: params?.guidanceScale,
      seed: params?.seed,
    },
    images: p.images.map((img, i) => ({
      url: urls[i] ?? '',
      width: img.width,
      height: img.height,
      content_type: img.contentType,
    })),
    created_at: iso(p.createdAt),
    completed_at: iso(p.completedAt),
    predict_time: p.predictTime ?? null,
    error: p.error || null,
  };
};

export const toWebhookEndpointJson = (e: billing.WebhookEndpoint) => ({
  endpoint_id: e.endpointId,
  url: e.url,
  events: e.events,
  description: e.description,
  created_at: iso(e.createdAt),
  status: e.disabledAt ? 'disabled' : e.failingSince ? 'failing' : 'enabled',
  disabled_at: iso(e.disabledAt),
  disabled_reason: e.disabledReason || null,
  failing_since: iso(e.failingSince),
  previous_secret_expires_at: iso(e.previousSecretExpiresAt),
});

export const toWebhookDeliveryJson = (d: billing.WebhookDelivery) => ({
  delivery_id: d.deliveryId,
  event_id: d.eventId,
  event_type: d.eventType,
  endpoint_id: d.endpointId || null,
  url: d.url,
  status: d.status,
  attempts: d.attempts,
  last_http_status: d.lastHttpStatus ?? null,
  last_error: d.lastError || null,
  next_attempt_at: iso(d.nextAttemptAt),
  created_at: iso(d.createdAt),
  delivered_at: iso(d.deliveredAt),
});
