import { EVENT_TYPES } from '@atelier/kit';
import { z } from '../../openapi/registry';

/** Path ids are UUIDs; anything else is a 400 before any service is asked. */
export const uuid = (name: string) =>
  z
    .string()
    .uuid(`${name} must be a UUID`)
    .openapi({ param: { name, in: 'path' }, example: '0b7f9c1e-4a2d-4c1b-9f0e-2d3c4b5a6e7f' });

/**
 * Where this resource's events are POSTed too (signed with the account's callback secret). Only
 * its shape here: which URLs callbacks may go to is the services' rule (kit's checkCallbackUrl),
 * answered as a 400 that names callback_url.
 */
const CallbackUrl = z
  .string()
  .max(2000)
  .describe(
    "Receives this resource's events, signed with the account's callback secret: https to a public address (the operator may allow http and private addresses)",
  );

export const Plan = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string(),
    price: z.number().int().describe('minor units'),
    currency: z.string(),
    images: z.number().int(),
    is_init: z.boolean(),
    min_images: z.number().int(),
    max_images: z.number().int(),
  })
  .openapi('Plan');

const PaymentStatus = z.enum(['pending', 'paid', 'failed', 'expired', 'refunded']);

export const Payment = z
  .object({
    payment_id: z.string().uuid(),
    checkout_url: z.string(),
    status: PaymentStatus,
    plan_id: z.string(),
    version_id: z.string().uuid().nullable(),
    amount: z.number().int(),
    currency: z.string(),
    promocode_applied: z.boolean(),
    expires_at: z.string().datetime().nullable(),
    created_at: z.string().datetime(),
    paid_at: z.string().datetime().nullable(),
  })
  .openapi('Payment');

export const CreatePaymentBody = z
  .object({
    plan_id: z.string().min(1).max(64),
    promocode_id: z.string().min(1).max(255).optional(),
    version_id: z.string().uuid('version_id must be a UUID').optional(),
  })
  .strict()
  .openapi('CreatePayment');

export const RunStatus = z.enum(['starting', 'processing', 'succeeded', 'failed', 'canceled']);

export const Version = z
  .object({
    version_id: z.string().uuid(),
    status: RunStatus,
    is_ready: z.boolean(),
    class: z.string(),
    trigger_word: z.string(),
    model: z.string(),
    created_at: z.string().datetime(),
    started_at: z.string().datetime().nullable(),
    completed_at: z.string().datetime().nullable(),
    pushed_at: z.string().datetime().nullable(),
    training_seconds: z.number().nullable(),
    error: z.string().nullable(),
    images: z.object({ granted: z.number().int(), used: z.number().int(), remaining: z.number().int() }),
  })
  .openapi('Version');

export const TrainAccepted = z
  .object({ version_id: z.string().uuid(), status: RunStatus, images: z.number().int() })
  .openapi('TrainingAccepted');

export const TrainForm = z
  .object({
    images: z
      .array(z.string().openapi({ format: 'binary' }))
      .describe('5–30 photos (JPEG, PNG, WebP, HEIC/HEIF, AVIF)'),
    class: z.string().describe('what the photos show, e.g. man, woman, dog'),
    trigger_word: z.string().optional(),
    callback_url: CallbackUrl.optional(),
  })
  .openapi('TrainingUpload');

export const CreatePromptBody = z
  .object({
    prompt: z.string().trim().min(1).max(2000),
    negative_prompt: z.string().max(2000).optional(),
    num_outputs: z.number().int().min(1).max(4).default(1),
    width: z.number().int().min(256).max(2048).multipleOf(8).optional(),
    height: z.number().int().min(256).max(2048).multipleOf(8).optional(),
    num_inference_steps: z.number().int().min(1).max(100).optional(),
    guidance_scale: z.number().min(0).max(30).optional(),
    seed: z.number().int().min(0).max(2_147_483_647).optional(),
    callback_url: CallbackUrl.optional(),
  })
  .strict()
  .openapi('CreatePrompt');

const PromptImage = z
  .object({ url: z.string(), width: z.number().int(), height: z.number().int(), content_type: z.string() })
  .openapi('PromptImage');

export const Prompt = z
  .object({
    prompt_id: z.string().uuid(),
    version_id: z.string().uuid(),
    status: RunStatus,
    prompt: z.string(),
    negative_prompt: z.string(),
    params: z.record(z.string(), z.unknown()),
    images: z.array(PromptImage),
    created_at: z.string().datetime(),
    completed_at: z.string().datetime().nullable(),
    predict_time: z.number().nullable(),
    error: z.string().nullable(),
  })
  .openapi('Prompt');

export const PromptAccepted = z
  .object({ prompt_id: z.string().uuid(), status: RunStatus, images_remaining: z.number().int() })
  .openapi('PromptAccepted');

export const PromptList = z
  .object({ prompts: z.array(Prompt), next_cursor: z.string().nullable() })
  .openapi('PromptList');

export const WebhookAck = z.object({ received: z.boolean() }).openapi('WebhookAck');

/** Keyset paging of every listing: `cursor` is the `next_cursor` of the previous page. */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).optional(),
  cursor: z.string().max(200).optional(),
});

export const VersionList = z
  .object({ versions: z.array(Version), next_cursor: z.string().nullable() })
  .openapi('VersionList');

export const PaymentList = z
  .object({ payments: z.array(Payment), next_cursor: z.string().nullable() })
  .openapi('PaymentList');

export const Account = z
  .object({
    account_id: z.string().uuid(),
    email: z.string(),
    created_at: z.string().datetime(),
    tier: z.string(),
    limits: z.object({
      reads_per_minute: z.number().int(),
      writes_per_minute: z.number().int(),
      prompts_at_once: z.number().int(),
      creates_per_day: z.number().int(),
      trainings_at_once: z.number().int(),
    }),
    credits: z.object({ granted: z.number().int(), used: z.number().int(), remaining: z.number().int() }),
  })
  .openapi('Account');

const EventType = z.enum(EVENT_TYPES);

export const CreateWebhookEndpointBody = z
  .object({
    url: z.string().min(1).max(2000).describe('https; must not resolve to a private address'),
    events: z.array(EventType).max(20).default([]).describe('Empty: every event type'),
    description: z.string().max(500).default(''),
  })
  .strict()
  .openapi('CreateWebhookEndpoint');

const WebhookEndpoint = z
  .object({
    endpoint_id: z.string().uuid(),
    url: z.string(),
    events: z.array(z.string()),
    description: z.string(),
    created_at: z.string().datetime(),
    status: z.enum(['enabled', 'failing', 'disabled']),
    disabled_at: z.string().datetime().nullable(),
    disabled_reason: z.string().nullable(),
    failing_since: z.string().datetime().nullable(),
    previous_secret_expires_at: z.string().datetime().nullable(),
  })
  .openapi('WebhookEndpoint');

export const WebhookEndpointWithSecret = WebhookEndpoint.extend({
  secret: z.string().describe('whsec_…: shown only in this answer'),
}).openapi('WebhookEndpointWithSecret');

export const WebhookEndpointList = z
  .object({ endpoints: z.array(WebhookEndpoint) })
  .openapi('WebhookEndpointList');

export const CallbackSecret = z
  .object({
    secret: z.string().describe('whsec_…: signs deliveries to per-request callback_url; shown only here'),
    previous_secret_expires_at: z.string().datetime().nullable(),
  })
  .openapi('CallbackSecret');

export const WebhookDelivery = z
  .object({
    delivery_id: z.string().uuid(),
    event_id: z.string().uuid().describe('the webhook-id header of every attempt'),
    event_type: z.string(),
    endpoint_id: z.string().uuid().nullable().describe('null for a per-request callback_url'),
    url: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    last_http_status: z.number().int().nullable(),
    last_error: z.string().nullable(),
    next_attempt_at: z.string().datetime().nullable(),
    created_at: z.string().datetime(),
    delivered_at: z.string().datetime().nullable(),
  })
  .openapi('WebhookDelivery');

export const WebhookDeliveryList = z
  .object({ deliveries: z.array(WebhookDelivery), next_cursor: z.string().nullable() })
  .openapi('WebhookDeliveryList');
export const DeletionAccepted = z
  .object({
    id: z.string().uuid().describe('the version or account being deleted'),
    status: z.literal('deleting'),
    requested_at: z.string().datetime(),
  })
  .openapi('DeletionAccepted');
