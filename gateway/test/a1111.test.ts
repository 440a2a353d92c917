/**
 * The Automatic1111-compatible API as an A1111 client uses it: the calls are the ones A1111's API
 * documentation shows (`POST /sdapi/v1/txt2img` with `{"prompt": …, "steps": 5}`, the images read
 * back as base64 PNG; `--api-auth` HTTP Basic), and every request and answer is validated with Ajv
 * against A1111's own models (test/fixtures/a1111-sdapi.schema.json), not against our document.
 * The model is trained for real through the gateway (sandboxes, whole mesh).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { Client } from 'pg';
import sharp from 'sharp';
import {
  distinctPhotos,
  insertVersionRow,
  paidInitPayment,
  photoForm,
  startMesh,
  waitFor,
  type Mesh,
} from '@atelier/infra/testing';

const schema = JSON.parse(
  fs.readFileSync(path.join(__dirname, 'fixtures', 'a1111-sdapi.schema.json'), 'utf8'),
) as object;
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(schema, 'a1111');
function assertA1111(def: string, value: unknown): void {
  const validate = ajv.getSchema(`a1111#/$defs/${def}`)!;
  if (!validate(value)) throw new Error(`${def}: ${ajv.errorsText(validate.errors)}`);
}

let mesh: Mesh;
let owner: { accountId: string; apiKey: string };
let versionId: string;
/** `--api-auth user:password` as A1111 clients send it: the API key is the password. */
const basic = (key: string) => `Basic ${Buffer.from(`atelier:${key}`).toString('base64')}`;

async function sdapi(
  route: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; json: unknown; res: Response }> {
  if (body !== undefined) assertA1111('StableDiffusionProcessingTxt2Img', body);
  const res = await mesh.api(`/sdapi/v1/${route}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: basic(key),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json(), res };
}

async function credits(key: string, id: string) {
  const res = await mesh.api(`/api/v1/versions/info/${id}`, { key });
  return ((await res.json()) as { images: { granted: number; used: number; remaining: number } }).images;
}

beforeAll(async () => {
  mesh = await startMesh({
    replicate: { trainingMs: 100, predictionMs: 300 },
    // One prompt at a time on the owner's tier, so one held prompt reaches the cap; the harness's
    // lifted training cap is kept.
    env: { TIER_LIMITS: JSON.stringify({ standard: { promptsRunning: 1, trainingsRunning: 1000 } }) },
  });
  owner = await mesh.createAccount();
  const paymentId = await paidInitPayment(mesh, owner, 3);
  const res = await mesh.api(`/api/v1/versions/train/${paymentId}`, {
    key: owner.apiKey,
    method: 'POST',
    body: photoForm(await distinctPhotos(5), { class: 'dog', trigger_word: 'TOK' }),
  });
  if (res.status !== 202) throw new Error(`train answered ${res.status}: ${await res.text()}`);
  versionId = ((await res.json()) as { version_id: string }).version_id;
  await waitFor(
    async () =>
      (
        (await (await mesh.api(`/api/v1/versions/info/${versionId}`, { key: owner.apiKey })).json()) as {
          is_ready: boolean;
        }
      ).is_ready,
    { what: 'the version to be ready', timeoutMs: 30_000 },
  );
});
afterAll(async () => {
  await mesh?.stop();
});

describe('Automatic1111-compatible API', () => {
  it('lists my ready versions as checkpoints in A1111’s SDModelItem shape', async () => {
    const { status, json } = await sdapi('sd-models', owner.apiKey);
    expect(status).toBe(200);
    assertA1111('SDModelList', json);
    expect(json).toEqual([
      expect.objectContaining({ title: versionId, model_name: versionId, class: 'dog', trigger_word: 'TOK' }),
    ]);
    const stranger = await mesh.createAccount();
    expect((await sdapi('sd-models', stranger.apiKey)).json).toEqual([]);
  });

  it('txt2img answers A1111’s TextToImageResponse with base64 PNGs from our bucket and spends the credits', async () => {
    // A1111's documented example payload, with the checkpoint override and two A1111 fields Atelier
    // does not use (null seed = random, a sampler name) that must be accepted and ignored.
    const payload = {
      prompt: 'puppy dog',
      steps: 5,
      batch_size: 2,
      seed: null,
      sampler_name: 'Euler a',
      override_settings: { sd_model_checkpoint: versionId },
    };
    const { status, json } = await sdapi('txt2img', owner.apiKey, payload);
    expect(status).toBe(200);
    assertA1111('TextToImageResponse', json);
    const { images, info } = json as { images: string[]; info: string };
    expect(images).toHaveLength(2);
    for (const b64 of images) {
      const meta = await sharp(Buffer.from(b64, 'base64')).metadata();
      expect(meta).toMatchObject({ format: 'png', width: 512, height: 512 });
    }
    expect(JSON.parse(info)).toMatchObject({ prompt: 'puppy dog', steps: 5, sd_model_name: versionId });
    expect(await credits(owner.apiKey, versionId)).toEqual({ granted: 3, used: 2, remaining: 1 });
  });

  it('refuses what it cannot do in A1111’s error shapes: wrong types 422, too few credits 402, a foreign model 404, a wrong key 401', async () => {
    const wrongType = await mesh.api('/sdapi/v1/txt2img', {
      method: 'POST',
      headers: { authorization: basic(owner.apiKey), 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', steps: 'many' }),
    });
    expect(wrongType.status).toBe(422);
    const invalid = await wrongType.json();
    assertA1111('HTTPValidationError', invalid);
    expect((invalid as { detail: Array<{ loc: unknown[] }> }).detail[0]?.loc).toContain('steps');

    const short = await sdapi('txt2img', owner.apiKey, {
      prompt: 'two more',
      batch_size: 2,
      override_settings: { sd_model_checkpoint: versionId },
    });
    expect(short.status).toBe(402);
    expect(short.json).toMatchObject({
      error: 'InsufficientCredits',
      detail: expect.stringContaining('1 remaining'),
    });
    expect(await credits(owner.apiKey, versionId)).toEqual({ granted: 3, used: 2, remaining: 1 });

    const stranger = await mesh.createAccount();
    const foreign = await sdapi('txt2img', stranger.apiKey, {
      prompt: 'not mine',
      override_settings: { sd_model_checkpoint: versionId },
    });
    expect(foreign.status).toBe(404);
    expect(foreign.json).toMatchObject({ error: 'NotFound' });

    const denied = await sdapi('sd-models', 'r8_not_a_key_of_ours');
    expect(denied.status).toBe(401);
    expect(denied.res.headers.get('www-authenticate')).toBe('Basic');
  });

  it('txt2img over the cap on prompts running at once is 429 with Retry-After, as for prompts', async () => {
    // A prompt that stays running: Replicate's webhooks are lost and its status cannot be read.
    mesh.replicate.faults.dropWebhooks();
    mesh.replicate.faults.failNextApiCalls({
      count: 100_000,
      status: 503,
      method: 'GET',
      path: '/v1/predictions/',
    });
    try {
      const held = await mesh.api(`/api/v1/prompts/create/${versionId}`, {
        key: owner.apiKey,
        method: 'POST',
        json: { prompt: 'held', num_outputs: 1, width: 256, height: 256 },
      });
      expect(held.status).toBe(202);
      const { prompt_id: heldId } = (await held.json()) as { prompt_id: string };

      const refused = await sdapi('txt2img', owner.apiKey, {
        prompt: 'one too many',
        override_settings: { sd_model_checkpoint: versionId },
      });
      expect(refused.status).toBe(429);
      expect(refused.json).toMatchObject({ error: 'TooManyRunningPrompts' });
      expect(Number(refused.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

      mesh.replicate.faults.clear();
      const cancel = await mesh.api(`/api/v1/prompts/${heldId}/cancel`, {
        key: owner.apiKey,
        method: 'POST',
      });
      expect(cancel.status).toBeLessThan(300);
    } finally {
      mesh.replicate.faults.clear();
    }
  });

  it('txt2img without a checkpoint runs on my newest ready version, found on the first page of 101', async () => {
    const many = await mesh.createAccount();
    const db = new Client({ connectionString: mesh.db.url });
    await db.connect();
    const ids: string[] = [];
    try {
      const now = Date.now();
      for (let i = 0; i < 101; i++) {
        const id = randomUUID();
        ids.push(id);
        const at = new Date(now - i * 60_000);
        await insertVersionRow(db, {
          id,
          account_id: many.accountId,
          payment_id: randomUUID(),
          status: 'succeeded',
          replicate_training_id: `sandbox_${id}`,
          replicate_version: 'f'.repeat(64),
          created_at: at,
          completed_at: at,
          pushed_at: at,
        });
      }
    } finally {
      await db.end();
    }
    const models = await sdapi('sd-models', many.apiKey);
    expect((models.json as Array<{ title: string }>).map((m) => m.title)).toEqual(ids);

    const { trainer, inferencer } = mesh.gateway.deps.mesh;
    const listed = jest.spyOn(trainer, 'listVersions');
    const created = jest.spyOn(inferencer, 'createPrompt');
    try {
      // No credits on these versions: the prompt is refused once the version is picked.
      const refused = await sdapi('txt2img', many.apiKey, { prompt: 'newest' });
      expect(refused.status).toBe(402);
      expect(created.mock.calls.map(([request]) => request.versionId)).toEqual([ids[0]]);
      expect(listed).toHaveBeenCalledTimes(1);
    } finally {
      listed.mockRestore();
      created.mockRestore();
    }
  });

  it('is in the served OpenAPI document under its own tag', async () => {
    const doc = (await (await mesh.api('/api/v1/openapi.json')).json()) as {
      paths: Record<string, Record<string, { tags: string[] }>>;
    };
    expect(doc.paths['/sdapi/v1/txt2img']?.post?.tags).toEqual(['automatic1111']);
    expect(doc.paths['/sdapi/v1/sd-models']?.get?.tags).toEqual(['automatic1111']);
  });
});
