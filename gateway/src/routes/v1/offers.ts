import { Errors, toOfferJson } from '@atelier/kit';
import type { inferencer } from '@atelier/protos';
import { z } from '../../openapi/registry';
import { route } from '../define';
import type { GatewayDeps } from '../../deps';
import { Prompt, uuid } from './schemas';
import { withUrls } from './prompts';

const Offer = z
  .object({
    offer_id: z.string().uuid(),
    name: z.string(),
    template: z
      .string()
      .describe('{trigger_word} and {class} come from the version; the rest are `variables`'),
    negative_template: z.string(),
    price_credits: z.number().int(),
    create_qty: z.number().int().describe('images per run'),
    params: z.record(z.string(), z.unknown()),
    result_expiry_days: z.number().int().nullable(),
    variables: z.array(z.string()).describe('what a run must give'),
  })
  .openapi('Offer');

const Pack = z
  .object({
    pack_id: z.string().uuid(),
    name: z.string(),
    offer_ids: z.array(z.string().uuid()),
    price_credits: z.number().int().describe('what a run costs'),
    discount_percent: z.number().int(),
    variables: z.array(z.string()).describe('what a run must give'),
  })
  .openapi('Pack');

const Run = z
  .object({
    run_id: z.string().uuid(),
    kind: z.enum(['offer', 'pack']),
    offer_id: z.string().uuid().nullable(),
    pack_id: z.string().uuid().nullable(),
    version_id: z.string().uuid(),
    variables: z.record(z.string(), z.string()),
    price_credits: z.number().int().describe('reserved once for the whole run'),
    images_expected: z.number().int(),
    settled_credits: z
      .number()
      .int()
      .nullable()
      .describe('credits kept once every prompt ended: those of the images produced'),
    created_at: z.string().datetime(),
    prompts: z.array(Prompt),
  })
  .openapi('Run');

const RunBody = z
  .object({
    variables: z
      .record(z.string().max(50), z.string().max(200))
      .default({})
      .describe("the template's variables other than trigger_word and class"),
  })
  .openapi('RunBody');

const iso = (d: Date | undefined) => (d ? d.toISOString() : null);

const toPackJson = (p: inferencer.Pack) => ({
  pack_id: p.packId,
  name: p.name,
  offer_ids: p.offerIds,
  price_credits: p.priceCredits,
  discount_percent: p.discountPercent,
  variables: p.variables,
});

async function toRunJson(mesh: GatewayDeps['mesh'], r: inferencer.Run | undefined) {
  if (!r) throw Errors.unavailable('inferencer');
  return {
    run_id: r.runId,
    kind: r.kind as 'offer' | 'pack',
    offer_id: r.kind === 'offer' ? r.refId : null,
    pack_id: r.kind === 'pack' ? r.refId : null,
    version_id: r.versionId,
    variables: r.variables,
    price_credits: r.priceCredits,
    images_expected: r.imagesExpected,
    settled_credits: r.settledCredits ?? null,
    created_at: iso(r.createdAt),
    prompts: await withUrls(mesh, r.prompts),
  };
}

const runResponses = {
  201: { description: 'The run and its prompts', schema: Run },
  200: { description: 'An identical request of the last minute made this run already', schema: Run },
  400: { description: 'A missing or unknown variable (named)' },
  402: { description: 'Not enough credits for the whole run; nothing ran' },
  404: { description: 'Unknown offer, pack or version' },
  409: { description: 'The version is not ready' },
};

export const offerRoutes = [
  route({
    method: 'get',
    path: '/api/v1/offers',
    summary: 'Offers: prompt templates sold at a credit price',
    tags: ['offers'],
    auth: true,
    responses: { 200: { description: 'Every offer', schema: z.object({ offers: z.array(Offer) }) } },
    handler: async (_ctx, { mesh }) => {
      const { offers } = await mesh.inferencer.listOffers({ includeInactive: false });
      return { status: 200, body: { offers: offers.map(toOfferJson) } };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/packs',
    summary: 'Packs: offers bundled at a fixed or discounted price',
    tags: ['offers'],
    auth: true,
    responses: { 200: { description: 'Every pack', schema: z.object({ packs: z.array(Pack) }) } },
    handler: async (_ctx, { mesh }) => {
      const { packs } = await mesh.inferencer.listPacks({ includeInactive: false });
      return { status: 200, body: { packs: packs.map(toPackJson) } };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/offers/{offer_id}/run/{version_id}',
    summary: "Run an offer on a trained model; reserves the offer's price once",
    tags: ['offers'],
    auth: true,
    idempotent: true,
    params: z.object({ offer_id: uuid('offer_id'), version_id: uuid('version_id') }),
    body: RunBody,
    // A run starts several predictions in one call.
    deadlineMs: (_req, config) => config.GRPC_TIMEOUT_MS * 2,
    responses: runResponses,
    handler: async ({ req, accountId, params, body, deadlineMs }, { mesh }) => {
      const r = await mesh.inferencer.runOffer(
        {
          accountId,
          offerId: params.offer_id,
          versionId: params.version_id,
          variables: body.variables,
          maxRunning: req.limits?.promptsRunning ?? 0,
        },
        { timeoutMs: deadlineMs },
      );
      return { status: r.duplicate ? 200 : 201, body: await toRunJson(mesh, r.run) };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/packs/{pack_id}/run/{version_id}',
    summary: 'Run every offer of a pack as one request with one credit reservation (all or nothing)',
    tags: ['offers'],
    auth: true,
    idempotent: true,
    params: z.object({ pack_id: uuid('pack_id'), version_id: uuid('version_id') }),
    body: RunBody,
    // A run starts several predictions in one call.
    deadlineMs: (_req, config) => config.GRPC_TIMEOUT_MS * 2,
    responses: runResponses,
    handler: async ({ req, accountId, params, body, deadlineMs }, { mesh }) => {
      const r = await mesh.inferencer.runPack(
        {
          accountId,
          packId: params.pack_id,
          versionId: params.version_id,
          variables: body.variables,
          maxRunning: req.limits?.promptsRunning ?? 0,
        },
        { timeoutMs: deadlineMs },
      );
      return { status: r.duplicate ? 200 : 201, body: await toRunJson(mesh, r.run) };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/runs/{run_id}',
    summary: 'An offer or pack run with its prompts, listed together',
    tags: ['offers'],
    auth: true,
    params: z.object({ run_id: uuid('run_id') }),
    responses: { 200: { description: 'The run', schema: Run }, 404: { description: 'Unknown run' } },
    handler: async ({ accountId, params }, { mesh }) => {
      const { run } = await mesh.inferencer.getRun({ accountId, runId: params.run_id });
      return { status: 200, body: await toRunJson(mesh, run) };
    },
  }),
];
