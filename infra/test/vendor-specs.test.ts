/**
 * The sandboxes checked against what Stripe and Replicate publish, not against our reading of them.
 *
 * Both official clients are driven through the calls the services make, with a `fetch` that keeps
 * every response; each JSON body is then validated against the response schema of the matching
 * operation in `../shared/vendor-specs/` by Ajv, an independent JSON Schema validator. Fields the
 * sandboxes leave out on purpose are listed in OMITTED with the reason; anything else that differs
 * fails the test.
 */
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import JSZip from 'jszip';
import Replicate from 'replicate';
import sharp from 'sharp';
import Stripe from 'stripe';
import { startReplicateSandbox, type ReplicateSandbox } from '../sandbox/replicate';
import { startStripeSandbox, type StripeSandbox } from '../sandbox/stripe';
import { repoRoot } from '../stack';

const SPECS = path.join(repoRoot(__dirname), '..', 'shared', 'vendor-specs');
type OpenApi = { paths: Record<string, Record<string, { responses?: Record<string, unknown> }>> };
const readSpec = (name: string): OpenApi =>
  JSON.parse(fs.readFileSync(path.join(SPECS, name), 'utf8')) as OpenApi;

interface Recorded {
  method: string;
  path: string;
  status: number;
  body: unknown;
}

/** A fetch for the official clients that keeps a copy of every JSON answer. */
function recordingFetch(log: Recorded[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const type = res.headers.get('content-type') ?? '';
    if (type.includes('json')) {
      const body: unknown = await res.clone().json();
      log.push({
        method: (init?.method ?? 'GET').toLowerCase(),
        path: url.pathname,
        status: res.status,
        body,
      });
    }
    return res;
  };
}

/** Deviations from the published schemas that are deliberate, as `<operation> <instancePath> <keyword>`. */
const OMITTED: Record<string, string> = {
  // Stripe moved a promotion code's coupon under `promotion` after 2023-08-16 (the newest full spec);
  // the sandbox serves the shape of the API version the `stripe` client pins, which our code reads.
  'get /v1/promotion_codes /data/0 required coupon': 'newer API version: promotion.coupon',
  'get /v1/promotion_codes/{promotion_code} required coupon': 'newer API version: promotion.coupon',
};

/** Retrievals our code makes that Stripe's slice has no path for: checked against the object's schema. */
const STRIPE_OBJECTS: Record<string, string> = {
  '/v1/charges/{charge}': 'charge',
  '/v1/promotion_codes/{promotion_code}': 'promotion_code',
};

/** Validates every recorded answer against its operation; returns the unexpected differences. */
function check(
  spec: OpenApi,
  ajv: Ajv,
  specId: string,
  log: Recorded[],
  { prefix = '', objects = {} }: { prefix?: string; objects?: Record<string, string> } = {},
): string[] {
  const templates = [...Object.keys(spec.paths), ...Object.keys(objects)].map((template) => ({
    template,
    pattern: new RegExp(`^${prefix}${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
  const problems: string[] = [];
  const validators = new Map<string, ValidateFunction>();
  /** Validates one answer; its differences not listed in OMITTED become problems. */
  const report = (validate: ValidateFunction, r: Recorded, template: string): void => {
    if (validate(r.body)) return;
    for (const e of validate.errors ?? []) {
      const what = deviation(r.method, template, e);
      if (!(what in OMITTED)) problems.push(`${what} (${e.message ?? ''})`);
    }
  };
  for (const r of log) {
    // The most specific template wins (`/trainings/{id}/cancel` over `/trainings/{id}`).
    const match = templates
      .filter((t) => t.pattern.test(r.path))
      .sort((a, b) => b.template.split('/').length - a.template.split('/').length)[0];
    const object = match && r.method === 'get' && r.status === 200 ? objects[match.template] : undefined;
    const op = match && spec.paths[match.template]?.[r.method];
    if (match && object) {
      const validate = ajv.getSchema(`${specId}#/components/schemas/${object}`);
      if (!validate) throw new Error(`no schema ${object}`);
      report(validate, r, match.template);
      continue;
    }
    if (!match || !op) {
      problems.push(`${r.method} ${r.path}: no such operation in the vendor's document`);
      continue;
    }
    const status = String(r.status);
    const responses = op.responses ?? {};
    const key = status in responses ? status : 'default' in responses ? 'default' : undefined;
    if (!key) {
      problems.push(`${r.method} ${match.template}: status ${status} is not documented`);
      continue;
    }
    const pointer = [
      'paths',
      match.template,
      r.method,
      'responses',
      key,
      'content',
      'application/json',
      'schema',
    ]
      .map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1'))
      .join('/');
    const ref = `${specId}#/${pointer}`;
    let validate = validators.get(ref);
    if (!validate) {
      validate = ajv.getSchema(ref);
      if (!validate) {
        problems.push(`${r.method} ${match.template} ${status}: no JSON schema`);
        continue;
      }
      validators.set(ref, validate);
    }
    report(validate, r, match.template);
  }
  return [...new Set(problems)];
}

function deviation(method: string, template: string, e: ErrorObject): string {
  const missing =
    e.keyword === 'required' ? ` ${String((e.params as { missingProperty: string }).missingProperty)}` : '';
  const at = e.instancePath ? ` ${e.instancePath}` : '';
  return `${method} ${template}${at} ${e.keyword}${missing}`;
}

/** OpenAPI 3.0's `nullable: true` as a JSON Schema union with null (Stripe's document is 3.0). */
function nullableToUnion(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(nullableToUnion);
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = nullableToUnion(v);
  if (out.nullable === true) {
    delete out.nullable;
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum)) out.enum = [...(out.enum as unknown[]), null];
    if (Array.isArray(out.anyOf)) out.anyOf = [...(out.anyOf as unknown[]), { type: 'null' }];
  }
  return out;
}

async function startFileServer(zip: Buffer): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/dataset.zip') res.writeHead(200, { 'content-type': 'application/zip' }).end(zip);
    else res.writeHead(204).end(); // webhooks
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('Replicate sandbox against Replicate’s published OpenAPI document', () => {
  let sandbox: ReplicateSandbox;
  let files: Awaited<ReturnType<typeof startFileServer>>;
  beforeAll(async () => {
    sandbox = await startReplicateSandbox({ trainingMs: 100, predictionMs: 100 });
    const zip = new JSZip();
    const photo = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#336699' } })
      .jpeg()
      .toBuffer();
    zip.file('a.jpg', photo);
    files = await startFileServer(await zip.generateAsync({ type: 'nodebuffer', compression: 'STORE' }));
  });
  afterAll(async () => {
    await files?.close();
    await sandbox?.stop();
  });

  it('serves models, trainings, predictions and the webhook secret in Replicate’s shapes', async () => {
    const log: Recorded[] = [];
    const client = new Replicate({
      auth: 'r8_sandbox',
      baseUrl: `${sandbox.url}/v1`,
      fetch: recordingFetch(log),
    });
    const trainer = 'ostris/flux-dev-lora-trainer';
    const trainerVersion = 'e440909d3512c31646ee2e0c7d6f6f4923224863a6a10c494606e79fb5844497';

    await client.models.create('atelier', 'spec-check', { visibility: 'private', hardware: 'gpu-l40s' });
    await client.models.get('atelier', 'spec-check');
    const training = await client.trainings.create(
      trainer.split('/')[0]!,
      trainer.split('/')[1]!,
      trainerVersion,
      {
        destination: 'atelier/spec-check',
        input: { input_images: `${files.url}/dataset.zip`, trigger_word: 'TOK' },
        webhook: `${files.url}/hook`,
        webhook_events_filter: ['completed'],
      },
    );
    const done = await waitUntil('the training to succeed', async () => {
      const t = await client.trainings.get(training.id);
      return t.status === 'succeeded' ? t : undefined;
    });
    const other = await client.trainings.create(
      trainer.split('/')[0]!,
      trainer.split('/')[1]!,
      trainerVersion,
      {
        destination: 'atelier/spec-check',
        input: { input_images: `${files.url}/dataset.zip`, trigger_word: 'TOK' },
      },
    );
    await client.trainings.cancel(other.id);

    const version = (done.output as { version: string }).version.split(':')[1]!;
    const prediction = await client.predictions.create({
      version,
      input: { prompt: 'a photo of TOK', num_outputs: 1 },
      webhook: `${files.url}/hook`,
    });
    await waitUntil('the prediction to succeed', async () => {
      const p = await client.predictions.get(prediction.id);
      return p.status === 'succeeded' ? p : undefined;
    });
    const running = await client.predictions.create({ version, input: { prompt: 'another' } });
    await client.predictions.cancel(running.id);
    await client.webhooks.default.secret.get();

    const spec = readSpec('replicate-openapi.json');
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema(spec, 'replicate');
    expect(log.length).toBeGreaterThanOrEqual(10);
    expect(check(spec, ajv, 'replicate', log, { prefix: '/v1' })).toEqual([]);
  });
});

describe('Stripe sandbox against Stripe’s published OpenAPI document', () => {
  let sandbox: StripeSandbox;
  beforeAll(async () => {
    sandbox = await startStripeSandbox({});
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  it('serves Checkout Sessions, promotion codes, payment intents, charges, refunds and events in Stripe’s shapes', async () => {
    const log: Recorded[] = [];
    const stripe = new Stripe(sandbox.secretKey, {
      ...sandbox.clientConfig,
      httpClient: Stripe.createFetchHttpClient(recordingFetch(log)),
      telemetry: false,
    });
    const params: Stripe.Checkout.SessionCreateParams = {
      mode: 'payment',
      line_items: [
        { quantity: 1, price_data: { currency: 'usd', unit_amount: 1300, product_data: { name: 'Basic' } } },
      ],
      success_url: 'http://127.0.0.1/ok',
      cancel_url: 'http://127.0.0.1/cancel',
      metadata: { payment_id: 'p1' },
      client_reference_id: 'p1',
    };
    const session = await stripe.checkout.sessions.create({
      ...params,
      discounts: [{ promotion_code: 'promo_sandbox_active10' }],
    });
    await stripe.checkout.sessions.retrieve(session.id);
    await sandbox.pay(session.id);
    const paid = await stripe.checkout.sessions.retrieve(session.id);
    const intent = await stripe.paymentIntents.retrieve(paid.payment_intent as string);
    if (typeof intent.latest_charge === 'string') {
      await stripe.charges.retrieve(intent.latest_charge, { expand: ['payment_intent'] });
    }
    await stripe.refunds.create({ payment_intent: intent.id, amount: 100 });
    const event = sandbox.events().at(-1);
    if (event) await stripe.events.retrieve(event.id);
    await stripe.promotionCodes.list({ code: 'welcome10' });
    await stripe.promotionCodes.retrieve('promo_sandbox_active500', { expand: ['promotion.coupon'] });
    const unpaid = await stripe.checkout.sessions.create(params);
    await stripe.checkout.sessions.expire(unpaid.id);

    const spec = nullableToUnion(readSpec('stripe-slice-2023-08-16.json')) as OpenApi;
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    ajv.addSchema(spec, 'stripe');
    expect(log.length).toBeGreaterThanOrEqual(9);
    expect(check(spec, ajv, 'stripe', log, { objects: STRIPE_OBJECTS })).toEqual([]);
  });
});
