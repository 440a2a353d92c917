import { Errors } from '@atelier/kit';
import type { inferencer } from '@atelier/protos';
import { z } from '../../openapi/registry';
import { route } from '../define';
import type { GatewayDeps } from '../../deps';
import { CreatePromptBody, Prompt, PromptAccepted, PromptList, uuid } from './schemas';
import { isFinished, runStatus, toPromptJson } from './mappers';

/** Image URLs for many prompts in one imager call. */
export async function withUrls(mesh: GatewayDeps['mesh'], prompts: inferencer.Prompt[]) {
  const keys = prompts.flatMap((p) => p.images.map((i) => i.key));
  const urls = keys.length ? (await mesh.imager.signUrls({ keys })).urls : [];
  let at = 0;
  return prompts.map((p) => {
    const mine = urls.slice(at, at + p.images.length);
    at += p.images.length;
    return toPromptJson(p, mine);
  });
}

/** `Prefer: wait=N` (N ≤ 60), as Replicate spells it. */
function preferWait(header: string | undefined): number {
  const match = /(?:^|[;,\s])wait=(\d{1,3})\b/.exec(header ?? '');
  return match ? Math.min(Number(match[1]), 60) : 0;
}

export const promptRoutes = [
  route({
    method: 'post',
    path: '/api/v1/prompts/create/{version_id}',
    summary: 'Generate images with a trained model; spends num_outputs credits',
    tags: ['prompts'],
    auth: true,
    idempotent: true,
    params: z.object({ version_id: uuid('version_id') }),
    body: CreatePromptBody,
    // No lock: credits are reserved atomically and the tier caps prompts running at once.
    deadlineMs: (req, config) => config.GRPC_TIMEOUT_MS + preferWait(req.get('prefer')) * 1000,
    openapi: {
      request: {
        headers: z.object({
          prefer: z.string().optional().describe('wait=N (N ≤ 60): answer 200 with the finished prompt'),
        }),
      },
    },
    responses: {
      200: { description: 'Finished within Prefer: wait', schema: Prompt },
      202: { description: 'Prompt accepted', schema: PromptAccepted },
      402: { description: 'Not enough credits; `remaining` says how many are left' },
      404: { description: 'Unknown version' },
      409: { description: 'The version is not ready' },
      429: { description: 'Rate limited, or as many prompts running as the tier allows at once' },
    },
    handler: async ({ req, accountId, params, body, newId, deadlineMs }, { mesh }) => {
      const wait = preferWait(req.get('prefer'));
      const { prompt, imagesRemaining } = await mesh.inferencer.createPrompt(
        {
          accountId,
          versionId: params.version_id,
          promptId: newId('prompt'),
          waitSeconds: wait,
          callbackUrl: body.callback_url,
          // The tier's cap on prompts running at once, enforced by inferencer with the reservation.
          maxRunning: req.limits?.promptsRunning ?? 0,
          params: {
            prompt: body.prompt,
            negativePrompt: body.negative_prompt ?? '',
            numOutputs: body.num_outputs,
            width: body.width,
            height: body.height,
            numInferenceSteps: body.num_inference_steps,
            guidanceScale: body.guidance_scale,
            seed: body.seed,
          },
        },
        { timeoutMs: deadlineMs },
      );
      if (!prompt) throw Errors.unavailable('inferencer');
      if (wait > 0 && isFinished(prompt.status)) {
        const [json] = await withUrls(mesh, [prompt]);
        return { status: 200, body: json };
      }
      return {
        status: 202,
        body: {
          prompt_id: prompt.promptId,
          status: runStatus(prompt.status),
          images_remaining: imagesRemaining,
        },
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/prompts/{prompt_id}',
    summary: 'A prompt, its status and its images',
    tags: ['prompts'],
    auth: true,
    params: z.object({ prompt_id: uuid('prompt_id') }),
    responses: { 200: { description: 'The prompt', schema: Prompt }, 404: { description: 'Unknown prompt' } },
    handler: async ({ accountId, params }, { mesh }) => {
      const { prompt } = await mesh.inferencer.getPrompt({ accountId, promptId: params.prompt_id });
      if (!prompt) throw Errors.notFound('prompt', params.prompt_id);
      const [json] = await withUrls(mesh, [prompt]);
      return { status: 200, body: json };
    },
  }),
  route({
    method: 'get',
    path: '/api/v1/prompts/list/{version_id}',
    summary: "A version's completed prompts with their images, newest first",
    tags: ['prompts'],
    auth: true,
    params: z.object({ version_id: uuid('version_id') }),
    query: z.object({
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: z.string().max(200).optional(),
    }),
    responses: {
      200: { description: 'One page', schema: PromptList },
      404: { description: 'Unknown version' },
    },
    handler: async ({ accountId, params, query }, { mesh }) => {
      const page = await mesh.inferencer.listPrompts({
        accountId,
        versionId: params.version_id,
        limit: query.limit,
        cursor: query.cursor ?? '',
      });
      return {
        status: 200,
        body: { prompts: await withUrls(mesh, page.prompts), next_cursor: page.nextCursor || null },
      };
    },
  }),
  route({
    method: 'post',
    path: '/api/v1/prompts/{prompt_id}/cancel',
    summary: 'Cancel a running prompt and release its credits',
    tags: ['prompts'],
    auth: true,
    params: z.object({ prompt_id: uuid('prompt_id') }),
    responses: {
      200: { description: 'The canceled prompt', schema: Prompt },
      404: { description: 'Unknown prompt' },
      409: { description: 'Already finished' },
    },
    handler: async ({ accountId, params }, { mesh }) => {
      const { prompt } = await mesh.inferencer.cancelPrompt({ accountId, promptId: params.prompt_id });
      if (!prompt) throw Errors.notFound('prompt', params.prompt_id);
      const [json] = await withUrls(mesh, [prompt]);
      return { status: 200, body: json };
    },
  }),
];
