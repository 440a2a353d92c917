import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import sharp from 'sharp';
import type { AsyncService } from '@atelier/kit';
import { billing as billingProto } from '@atelier/protos';
import { signWebhook } from '../sandbox/replicate';
import type { Mesh } from './mesh';
import { waitFor } from './wait';

type Account = { accountId: string; apiKey: string };

const { TrainingOutcome } = billingProto;

/**
 * An init payment paid the way a customer pays: created through the gateway, then the Stripe
 * sandbox's checkout page POSTed, then the signed webhook applied. `credits` > 0 makes (or
 * reuses) a plan granting that many images and selling `tier`.
 */
export async function paidInitPayment(
  mesh: Mesh,
  account: Account,
  credits?: number,
  tier: 'standard' | 'pro' = 'standard',
): Promise<string> {
  return (await paidPayment(mesh, account, credits, tier)).paymentId;
}

async function paidPayment(
  mesh: Mesh,
  account: Account,
  credits: number | undefined,
  tier: 'standard' | 'pro' = 'standard',
): Promise<{ paymentId: string; checkoutUrl: string }> {
  let planId = 'basic_init';
  if (credits) {
    planId = tier === 'standard' ? `test_init_${credits}` : `test_init_${credits}_${tier}`;
    await mesh.gateway.deps.mesh.billing.upsertPlan({
      plan: {
        id: planId,
        name: `Test ${credits}`,
        description: '',
        price: 100,
        currency: 'usd',
        images: credits,
        isInit: true,
        minImages: 5,
        maxImages: 30,
        deprecated: false,
        tier,
      },
    });
  }
  const created = await mesh.api('/api/v1/payments/create', {
    key: account.apiKey,
    method: 'POST',
    json: { plan_id: planId },
  });
  if (created.status !== 201)
    throw new Error(`payment create answered ${created.status}: ${await created.text()}`);
  const payment = (await created.json()) as { payment_id: string; checkout_url: string };
  const paid = await fetch(payment.checkout_url, { method: 'POST', headers: { accept: 'application/json' } });
  if (paid.status !== 200) throw new Error(`checkout answered ${paid.status}`);
  await waitFor(
    async () =>
      (
        (await (
          await mesh.api(`/api/v1/payments/${payment.payment_id}`, { key: account.apiKey })
        ).json()) as { status: string }
      ).status === 'paid',
    // Polls are read requests: a free tier's 60 a minute must last until the webhook lands.
    { what: 'the payment to be paid', intervalMs: 250 },
  );
  return { paymentId: payment.payment_id, checkoutUrl: payment.checkout_url };
}

/** `count` distinct solid-colour JPEGs, big enough to pass the photo checks. */
export async function distinctPhotos(
  count: number,
  size = 640,
): Promise<Array<{ name: string; type: string; data: Buffer }>> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => ({
      name: `photo-${i}.jpg`,
      type: 'image/jpeg',
      data: await sharp({
        create: {
          width: size,
          height: size,
          channels: 3,
          background: { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 151) % 256 },
        },
      })
        .jpeg()
        .toBuffer(),
    })),
  );
}

export function photoForm(
  files: Array<{ name: string; type: string; data: Buffer }>,
  fields: Record<string, string> = { class: 'man' },
): FormData {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  for (const f of files) body.append('images', new Blob([f.data], { type: f.type }), f.name);
  return body;
}

/** Standard Webhooks headers signing `body` with `secret` as Replicate does (a fresh id, now). */
export function signedWebhookHeaders(
  secret: string,
  body: string,
  id = `msg_${randomUUID()}`,
  timestamp = Math.floor(Date.now() / 1000),
): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(secret, id, timestamp, body),
  };
}

/** POSTs `body` to the gateway's Replicate webhook route, signed with the sandbox's secret unless
 * other `headers` are given. */
export function postReplicateWebhook(
  mesh: Mesh,
  kind: 'training' | 'prediction',
  body: string,
  headers = signedWebhookHeaders(mesh.replicate.webhookSecret, body),
): Promise<Response> {
  return mesh.api(`/api/v1/webhooks/replicate?kind=${kind}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Rows the mesh's tests write directly, where no API reaches the state in test time (a version
 * trained without a training, a reconciler's due time moved): one place to fix when a schema
 * changes. Service tests write only their own schema (eslint); end-to-end tests write through here.
 *
 * A row of trainer.versions: `row` holds column values over these defaults; next_check_at and
 * deadline_at a day ahead, so trainer's reconciler leaves it alone.
 */
export async function insertVersionRow(
  db: Client,
  row: { id: string; account_id: string; payment_id: string; status: string } & Record<string, unknown>,
): Promise<void> {
  const dayAhead = new Date(Date.now() + DAY_MS);
  const values: Record<string, unknown> = {
    class_name: 'dog',
    trigger_word: 'TOK',
    model: 'atelier/x',
    dataset_key: 'datasets/test.zip',
    image_count: 5,
    next_check_at: dayAhead,
    deadline_at: dayAhead,
    ...row,
  };
  const columns = Object.keys(values);
  await db.query(
    `INSERT INTO trainer.versions (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
    Object.values(values),
  );
}

/** Makes a version's or a prompt's next reconciler check due in `inMs` (0: now). */
export async function scheduleCheck(
  db: Pick<Client, 'query'>,
  table: 'trainer.versions' | 'inferencer.prompts',
  id: string,
  inMs: number,
): Promise<void> {
  await db.query(`UPDATE ${table} SET next_check_at = now() + $2 * interval '1 millisecond' WHERE id = $1`, [
    id,
    inMs,
  ]);
}

/** A training's init payment as billing holds it: the version it was claimed for, the payment, its checkout page. */
export interface TrainedVersion {
  versionId: string;
  initPaymentId: string;
  initCheckoutUrl: string;
}

/**
 * A version's billing as a training leaves it, without running one: a paid init payment (of a
 * plan granting `credits` and selling `tier`; `basic_init` without `credits`) claimed for a new
 * version id, then reported ready with ReportTrainingOutcome(READY) as trainer reports it, so
 * billing itself grants the payment's credits and records the version ready
 * (billing.trained_versions.ready_at). `ready: false` stops after the claim: a training still
 * running, with nothing granted. Billing's tests use this alone; end-to-end tests use readyVersion.
 */
export async function trainedVersion(
  mesh: Mesh,
  account: Account,
  opts: { credits?: number; tier?: 'standard' | 'pro'; ready?: boolean } = {},
): Promise<TrainedVersion> {
  const payment = await paidPayment(mesh, account, opts.credits, opts.tier);
  const versionId = randomUUID();
  const billing = mesh.gateway.deps.mesh.billing;
  await billing.claimInitPayment({ accountId: account.accountId, paymentId: payment.paymentId, versionId });
  if (opts.ready !== false)
    await billing.reportTrainingOutcome({
      accountId: account.accountId,
      paymentId: payment.paymentId,
      versionId,
      outcome: TrainingOutcome.TRAINING_OUTCOME_READY,
    });
  return { versionId, initPaymentId: payment.paymentId, initCheckoutUrl: payment.checkoutUrl };
}

/**
 * A ready version of `account` holding `credits` image credits, without running a training:
 * billing's side as `trainedVersion` makes it, and trainer's row written directly (succeeded,
 * pushed) pointing at a model version the Replicate sandbox really has (`model`, from a sandbox
 * training). Trainer's own tests cover the training path; prompt tests need only its result.
 */
export async function readyVersion(
  mesh: Mesh,
  account: Account,
  credits: number,
  model: { model: string; version: string },
  opts: { className?: string; tier?: 'standard' | 'pro' } = {},
): Promise<string> {
  const { versionId, initPaymentId } = await trainedVersion(mesh, account, { credits, tier: opts.tier });
  const db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  try {
    const now = new Date();
    await insertVersionRow(db, {
      id: versionId,
      account_id: account.accountId,
      payment_id: initPaymentId,
      status: 'succeeded',
      class_name: opts.className ?? 'dog',
      model: model.model,
      replicate_training_id: `sandbox_${randomUUID()}`,
      replicate_version: model.version,
      started_at: now,
      completed_at: now,
      pushed_at: now,
    });
  } finally {
    await db.end();
  }
  return versionId;
}

/** A gRPC service with only the methods a test calls; grpc-js answers the rest UNIMPLEMENTED. */
export const testDouble = <S>(handlers: Partial<AsyncService<S>>) => handlers as AsyncService<S>;
