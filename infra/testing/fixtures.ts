import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import sharp from 'sharp';
import type { Mesh } from './mesh';
import { waitFor } from './wait';

type Account = { accountId: string; apiKey: string };

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
  return payment.payment_id;
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

/**
 * A ready version of `account` holding `credits` image credits, without running a training: a
 * paid init payment of a plan granting `credits`, claimed for a new version id, trainer's row
 * written directly (succeeded, pushed) pointing at a model version the Replicate sandbox really
 * has (`model`, from a sandbox training), and the plan's credits granted. Trainer's own tests
 * cover the training path; prompt tests need only its result.
 */
export async function readyVersion(
  mesh: Mesh,
  account: Account,
  credits: number,
  model: { model: string; version: string },
  opts: { className?: string; tier?: 'standard' | 'pro' } = {},
): Promise<string> {
  const paymentId = await paidInitPayment(mesh, account, credits, opts.tier);
  const versionId = randomUUID();
  const billing = mesh.gateway.deps.mesh.billing;
  await billing.claimInitPayment({ accountId: account.accountId, paymentId, versionId });
  const db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  try {
    // next_check_at far ahead: trainer's reconciler leaves the row alone.
    await db.query(
      `INSERT INTO trainer.versions (id, account_id, payment_id, status, class_name, trigger_word, model, replicate_training_id,
                                     replicate_version, dataset_key, image_count, started_at, completed_at, pushed_at,
                                     next_check_at, deadline_at)
       VALUES ($1, $2, $3, 'succeeded', $7, 'TOK', $4, $5, $6, 'datasets/test.zip', 5, now(), now(), now(),
               now() + interval '1 day', now() + interval '1 day')`,
      [
        versionId,
        account.accountId,
        paymentId,
        model.model,
        `sandbox_${randomUUID()}`,
        model.version,
        opts.className ?? 'dog',
      ],
    );
  } finally {
    await db.end();
  }
  await billing.grantCredits({ accountId: account.accountId, versionId, paymentId });
  return versionId;
}
