/**
 * The Automatic1111-compatible routes: `GET /sdapi/v1/sd-models` lists my ready versions as A1111
 * checkpoints and `POST /sdapi/v1/txt2img` runs one prompt on one of them, answering once the
 * images are in our bucket. A protocol adapter only: the prompt is created by the same inferencer
 * RPC as `POST /api/v1/prompts/create`, so credits, limits and ownership are the same rules.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Errors } from '@atelier/kit';
import { common, type inferencer, type trainer } from '@atelier/protos';
import { z } from '../../openapi/registry';
import { route, type AnyRoute } from '../define';
import { isFinished } from '../v1/mappers';
import type { GatewayDeps } from '../../deps';
import {
  A1111Error,
  A1111ValidationError,
  SdModel,
  Txt2ImgBody,
  Txt2ImgResponse,
  withDefaults,
  type Txt2Img,
} from './a1111.mappers';

/** A1111 clients wait for the images in the one request; past this the prompt id is returned. */
const TXT2IMG_WAIT_MS = 120_000;
/** The inferencer holds a create for at most this long (its own limit), then we poll. */
const CREATE_WAIT_S = 60;
const POLL_MS = 500;

/** Errors in A1111's JSON shape; a 400 is answered as FastAPI's 422 (a1111.mappers.ts). */
const A1111_ERRORS = { contentType: 'application/json', schema: A1111Error, never: [400] };

const a1111Responses = {
  401: {
    description: 'Missing or wrong API key (Bearer, or HTTP Basic with the key as password)',
    schema: A1111Error,
  },
  429: { description: 'Rate limited', schema: A1111Error },
  503: { description: 'A dependency is unavailable', schema: A1111Error },
};

/**
 * My ready versions, newest first, a page at a time: a caller that needs only the newest stops
 * after the first page that has one. At most 50 pages of 100.
 */
async function* readyVersions({ mesh }: GatewayDeps, accountId: string): AsyncGenerator<trainer.Version> {
  let cursor = '';
  for (let page = 0; page < 50; page++) {
    const res = await mesh.trainer.listVersions({
      accountId,
      status: common.RunStatus.RUN_STATUS_SUCCEEDED,
      limit: 100,
      cursor,
    });
    yield* res.versions.filter((v) => v.isReady);
    if (!res.nextCursor) return;
    cursor = res.nextCursor;
  }
}

const toSdModel = (v: trainer.Version) => ({
  title: v.versionId,
  model_name: v.versionId,
  hash: null,
  sha256: null,
  filename: v.model,
  config: null,
  class: v.className,
  trigger_word: v.triggerWord,
});

/** The checkpoint named in override_settings, else my newest ready version (A1111's "current model"). */
async function pickVersion(deps: GatewayDeps, accountId: string, body: Txt2Img): Promise<string> {
  const named = body.override_settings.sd_model_checkpoint?.trim();
  if (named) return named.replace(/\s*\[[0-9a-f]+\]$/i, ''); // A1111 titles may end in " [hash]"
  for await (const newest of readyVersions(deps, accountId)) return newest.versionId;
  throw Errors.noReadyVersion();
}

async function waitFinished(
  { mesh }: GatewayDeps,
  accountId: string,
  prompt: inferencer.Prompt,
  deadline: number,
): Promise<inferencer.Prompt> {
  let current = prompt;
  while (!isFinished(current.status)) {
    if (Date.now() + POLL_MS > deadline) {
      throw Errors.timedOut(`the images were not ready within ${TXT2IMG_WAIT_MS / 1000} s`, {
        prompt_id: current.promptId,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const { prompt: next } = await mesh.inferencer.getPrompt({ accountId, promptId: current.promptId });
    if (!next) throw Errors.notFound('prompt', current.promptId);
    current = next;
  }
  return current;
}

/** The images' bytes from our bucket, as A1111 sends them: base64 PNG. */
async function imagesBase64({ mesh, config }: GatewayDeps, prompt: inferencer.Prompt): Promise<string[]> {
  const keys = prompt.images.map((i) => i.key);
  if (!keys.length) return [];
  const { urls } = await mesh.imager.signUrls({ keys });
  return Promise.all(
    urls.map(async (url) => {
      const res = await fetch(url, { signal: AbortSignal.timeout(config.GRPC_TIMEOUT_MS) }).catch(() => {
        throw Errors.unavailable('bucket');
      });
      if (!res.ok) throw Errors.unavailable('bucket');
      return Buffer.from(await res.arrayBuffer()).toString('base64');
    }),
  );
}

export const sdapiRoutes: AnyRoute[] = [
  route({
    method: 'get',
    path: '/sdapi/v1/sd-models',
    summary: 'My ready models as Automatic1111 checkpoints (title and model_name are the version id)',
    tags: ['automatic1111'],
    auth: true,
    errors: A1111_ERRORS,
    responses: { 200: { description: 'Ready versions', schema: z.array(SdModel) }, ...a1111Responses },
    handler: async ({ accountId }, deps) => {
      const models = [];
      for await (const v of readyVersions(deps, accountId)) models.push(toSdModel(v));
      return { status: 200, body: models };
    },
  }),
  route({
    method: 'post',
    path: '/sdapi/v1/txt2img',
    summary: 'Automatic1111 txt2img on one of my ready versions; answers once the images are in our bucket',
    tags: ['automatic1111'],
    auth: true,
    errors: A1111_ERRORS,
    body: Txt2ImgBody,
    responses: {
      200: { description: 'The images, base64 PNG, with A1111 parameters and info', schema: Txt2ImgResponse },
      402: { description: 'Not enough credits', schema: A1111Error },
      404: { description: 'Unknown model (sd_model_checkpoint)', schema: A1111Error },
      409: { description: 'The model is not ready', schema: A1111Error },
      422: { description: 'A wrong type or value in the body (FastAPI shape)', schema: A1111ValidationError },
      502: { description: 'The prediction failed; its credits were released', schema: A1111Error },
      504: {
        description: 'Not finished within 120 s; `prompt_id` names the prompt to poll',
        schema: A1111Error,
      },
      ...a1111Responses,
    },
    handler: async ({ req, accountId, body: given }, deps) => {
      const body = withDefaults(given);
      const deadline = Date.now() + TXT2IMG_WAIT_MS;
      const versionId = await pickVersion(deps, accountId, body);
      if (!/^[0-9a-f-]{36}$/i.test(versionId)) throw Errors.notFound('version', versionId);
      const numOutputs = body.batch_size * body.n_iter;
      const { prompt: created } = await deps.mesh.inferencer.createPrompt(
        {
          accountId,
          versionId,
          promptId: randomUUID(),
          waitSeconds: CREATE_WAIT_S,
          // The tier's cap on prompts running at once, as for POST /api/v1/prompts/create.
          maxRunning: req.limits?.promptsRunning ?? 0,
          params: {
            prompt: body.prompt,
            negativePrompt: body.negative_prompt,
            numOutputs,
            width: body.width,
            height: body.height,
            numInferenceSteps: body.steps,
            guidanceScale: body.cfg_scale,
            seed: body.seed >= 0 ? body.seed : undefined,
          },
        },
        { timeoutMs: deps.config.GRPC_TIMEOUT_MS + CREATE_WAIT_S * 1000 },
      );
      if (!created) throw Errors.unavailable('inferencer');
      const prompt = await waitFinished(deps, accountId, created, deadline);
      if (prompt.status !== common.RunStatus.RUN_STATUS_SUCCEEDED) {
        throw Errors.predictionFailed(prompt.promptId);
      }
      const images = await imagesBase64(deps, prompt);
      const seed = prompt.params?.seed ?? body.seed;
      const parameters = {
        ...body,
        override_settings: { ...body.override_settings, sd_model_checkpoint: versionId },
      };
      const info = {
        prompt: body.prompt,
        all_prompts: images.map(() => body.prompt),
        negative_prompt: body.negative_prompt,
        all_negative_prompts: images.map(() => body.negative_prompt),
        seed,
        all_seeds: images.map(() => seed),
        width: body.width,
        height: body.height,
        steps: body.steps,
        cfg_scale: body.cfg_scale,
        batch_size: body.batch_size,
        n_iter: body.n_iter,
        sd_model_name: versionId,
        sd_model_hash: createHash('sha256').update(versionId).digest('hex').slice(0, 10),
        prompt_id: prompt.promptId,
        infotexts: images.map(
          () =>
            `${body.prompt}\nNegative prompt: ${body.negative_prompt}\nSteps: ${body.steps}, CFG scale: ${body.cfg_scale}, Seed: ${seed}, Size: ${body.width}x${body.height}, Model: ${versionId}`,
        ),
      };
      return { status: 200, body: { images, parameters, info: JSON.stringify(info) } };
    },
  }),
];
