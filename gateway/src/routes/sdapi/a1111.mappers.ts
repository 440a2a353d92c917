/**
 * Automatic1111's wire shapes (the `/sdapi/v1` API of stable-diffusion-webui), so existing A1111
 * clients, plugins and scripts work unchanged. Only the shapes live here; credits, limits and
 * ownership are the prompt flow's, exactly as for `POST /api/v1/prompts/create`.
 */
import type { NextFunction, Request, Response } from 'express';
import { z } from '../../openapi/registry';
import { prepareErrorAnswer, sendProblem } from '../../errors/problem';

/**
 * A1111's `StableDiffusionTxt2ImgProcessingAPI`: every field is Optional there (null means the
 * default), fields Atelier does not honour (sampler, scripts, hires fix…) are accepted and ignored.
 */
export const Txt2ImgBody = z
  .object({
    prompt: z.string().max(2000).nullish(),
    negative_prompt: z.string().max(2000).nullish(),
    steps: z.number().int().min(1).max(100).nullish(),
    cfg_scale: z.number().min(0).max(30).nullish(),
    width: z.number().int().min(256).max(2048).multipleOf(8).nullish(),
    height: z.number().int().min(256).max(2048).multipleOf(8).nullish(),
    seed: z.number().int().min(-1).max(2_147_483_647).nullish(),
    batch_size: z.number().int().min(1).max(4).nullish(),
    n_iter: z.number().int().min(1).max(4).nullish(),
    override_settings: z
      .object({ sd_model_checkpoint: z.string().max(200).nullish() })
      .passthrough()
      .nullish(),
  })
  .passthrough()
  .refine((b) => (b.batch_size ?? 1) * (b.n_iter ?? 1) <= 4, {
    message: 'batch_size × n_iter must be at most 4 images per request',
    path: ['n_iter'],
  })
  .openapi('A1111Txt2ImgRequest');

/** The request with A1111's defaults (StableDiffusionProcessing's) where a field was absent or null. */
export function withDefaults(body: z.infer<typeof Txt2ImgBody>) {
  return {
    ...body,
    prompt: body.prompt ?? '',
    negative_prompt: body.negative_prompt ?? '',
    steps: body.steps ?? 50,
    cfg_scale: body.cfg_scale ?? 7,
    width: body.width ?? 512,
    height: body.height ?? 512,
    seed: body.seed ?? -1,
    batch_size: body.batch_size ?? 1,
    n_iter: body.n_iter ?? 1,
    override_settings: body.override_settings ?? {},
  };
}

export type Txt2Img = ReturnType<typeof withDefaults>;

export const Txt2ImgResponse = z
  .object({
    images: z.array(z.string()).describe('base64 PNG'),
    parameters: z.record(z.string(), z.unknown()),
    info: z.string().describe('JSON text, as A1111 sends it'),
  })
  .openapi('A1111Txt2ImgResponse');

export const SdModel = z
  .object({
    title: z.string(),
    model_name: z.string(),
    hash: z.string().nullable(),
    sha256: z.string().nullable(),
    filename: z.string(),
    config: z.string().nullable(),
    class: z.string(),
    trigger_word: z.string(),
  })
  .openapi('A1111SdModel');

/** FastAPI's validation error (`422 {detail: [{loc, msg, type}]}`), which A1111 answers for bad bodies. */
export const A1111ValidationError = z
  .object({
    detail: z.array(
      z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() }),
    ),
  })
  .openapi('A1111ValidationError');

/** A1111's error body for everything else (`{error, detail, body, errors}` from its exception handler). */
export const A1111Error = z
  .object({
    error: z.string(),
    detail: z.string(),
    body: z.string(),
    errors: z.string(),
    prompt_id: z.string().optional(),
  })
  .openapi('A1111Error');

const PASCAL = (code: string) => code.replace(/(^|_)([a-z])/g, (_m, _s, c: string) => c.toUpperCase());

/**
 * Errors of the `/sdapi` routes in A1111's shapes instead of problem+json. Status, what a 5xx
 * hides, logging and Retry-After are the problem+json answer's (errors/problem.ts), so a client
 * sees the same 401/402/409/429/503 as on /api/v1.
 */
export function a1111Errors(err: unknown, req: Request, res: Response, next: NextFunction): void {
  if (!req.path.startsWith('/sdapi/')) return next(err);
  if (res.headersSent) return sendProblem(req, res, err);
  const e = prepareErrorAnswer(req, res, err);
  const extra = e.extra as { errors?: Array<{ field: string; message: string }>; prompt_id?: string };
  if (e.status === 400) {
    // A wrong type or value, or malformed JSON: FastAPI's 422, field by field.
    const errors = extra.errors ?? [{ field: 'body', message: e.detail }];
    res.status(422).json({
      detail: errors.map((f) => ({
        loc: f.field.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
        msg: f.message,
        type: 'value_error',
      })),
    });
    return;
  }
  if (e.status === 401) res.setHeader('WWW-Authenticate', 'Basic');
  res.status(e.status).json({
    error: PASCAL(e.code),
    detail: e.detail,
    body: '',
    errors: e.detail,
    ...(extra.prompt_id ? { prompt_id: extra.prompt_id } : {}),
  });
}
