// A ready version the Replicate sandbox can run predictions on, made as infra/testing readyVersion
// makes one: a destination model and a sandbox training (on a one-photo zip served from a throwaway
// HTTP server) that pushes a version; a paid init payment of a plan granting `credits`, claimed for a
// new version id; trainer's row written directly (succeeded, pushed); reported ready to billing with
// ReportTrainingOutcome as trainer reports it (billing grants the credits and records the version ready).
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { require, waitFor } from './common.mjs';
import { billingClient, paidPayment } from './stack.mjs';

const Replicate = require('replicate');
const JSZip = require('jszip');
const sharp = require('sharp');
const { billing: billingProto } = require('@atelier/protos');

async function sandboxModelVersion(sandbox) {
  const photo = await sharp({ create: { width: 512, height: 512, channels: 3, background: '#7a5' } })
    .jpeg()
    .toBuffer();
  const zip = await new JSZip().file('0.jpg', photo).generateAsync({ type: 'nodebuffer' });
  const server = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/zip' }).end(zip),
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${server.address().port}/dataset.zip`;
    const client = new Replicate({ auth: sandbox.token, baseUrl: sandbox.baseUrl });
    const name = `bench-${Math.random().toString(36).slice(2, 10)}`;
    await client.models.create('atelier', name, { visibility: 'private', hardware: 'gpu-t4' });
    const training = await client.trainings.create('ostris', 'flux-dev-lora-trainer', 'a'.repeat(64), {
      destination: `atelier/${name}`,
      input: { input_images: url },
    });
    const done = await waitFor(
      async () => {
        const t = await client.trainings.get(training.id);
        if (t.status === 'failed' || t.status === 'canceled')
          throw new Error(`sandbox training ${t.status}: ${t.error}`);
        return t.status === 'succeeded' && t;
      },
      { timeoutMs: 30_000, what: 'the sandbox training to push a version' },
    );
    const pushed = done.output.version;
    return {
      model: `atelier/${name}`,
      version: pushed.slice(pushed.lastIndexOf(':') + 1),
      trainingId: training.id,
    };
  } finally {
    await new Promise((resolve) => server.close(() => resolve()));
  }
}

export async function readyVersion(stack, db, account, credits) {
  const model = await sandboxModelVersion(stack.info.replicate);
  const billing = billingClient(stack);
  try {
    const planId = `bench_${credits}`;
    await billing.upsertPlan({
      plan: {
        id: planId,
        name: `Bench ${credits}`,
        description: '',
        price: 100,
        currency: 'usd',
        images: credits,
        isInit: true,
        minImages: 5,
        maxImages: 30,
        deprecated: false,
        tier: 'standard',
      },
    });
    const paymentId = await paidPayment(stack, account.apiKey, planId);
    const versionId = randomUUID();
    await billing.claimInitPayment({ accountId: account.accountId, paymentId, versionId });
    await db.query(
      `INSERT INTO trainer.versions (id, account_id, payment_id, status, class_name, trigger_word, model, replicate_training_id,
                                     replicate_version, dataset_key, image_count, started_at, completed_at, pushed_at,
                                     next_check_at, deadline_at, grant_settled_at, usage_recorded_at, settled_at)
       VALUES ($1, $2, $3, 'succeeded', 'dog', 'TOK', $4, $5, $6, 'datasets/bench.zip', 5, now(), now(), now(),
               now() + interval '1 day', now() + interval '1 day', now(), now(), now())`,
      [versionId, account.accountId, paymentId, model.model, model.trainingId, model.version],
    );
    await billing.reportTrainingOutcome({
      accountId: account.accountId,
      paymentId,
      versionId,
      outcome: billingProto.TrainingOutcome.TRAINING_OUTCOME_READY,
    });
    return { versionId, model };
  } finally {
    billing.close();
  }
}
