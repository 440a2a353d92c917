// outputs: how long a finished 4-output prediction takes to complete — its outputs copied into our
// bucket by imager (TransferOutputs) and the prompt settled (credits, usage, images, status) — against
// the slowest single download of those outputs, in the same run.
//
// The sandbox renders 1024×1024 PNGs of a gradient and a line of text: ~85 KB, where a real model's
// 1024×1024 output is ~1.5 MB. So that a download takes what a real one takes, the shaper serves
// them at 1 MiB/s per connection after 40 ms: ~120 ms for the sandbox file, the time a 1.5 MB file
// needs at ~18 MiB/s. Both are settings (BENCH_OUTPUTS_LATENCY_MS, BENCH_OUTPUTS_MIB_PER_S).
//
// The sandbox's completion webhook is dropped; once the prediction has succeeded the benchmark
// downloads each output alone (the baseline), then delivers the signed completion webhook itself to
// the gateway and times it until the prompt is succeeded: the webhook is answered once the result is
// recorded, and the claim loop it wakes copies the outputs and settles (polled every 5 ms). The sandbox's
// files are served through a shaper (bench/lib/shaper.mjs) that adds a CDN-like first-byte latency
// and per-connection bandwidth, so a download takes what it takes from Replicate, not 2 ms.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { lastLog, log, median, mib, now, require, round, waitFor } from './lib/common.mjs';
import { api, createAccount, startStack } from './lib/stack.mjs';
import { readyVersion } from './lib/versions.mjs';

const { signWebhook } = require('./infra/dist/sandbox/replicate/index.js');

const TRIALS = Number(process.env.BENCH_OUTPUTS_TRIALS ?? 5);
const SIZE = Number(process.env.BENCH_OUTPUTS_SIZE ?? 1024);
export const SHAPE = {
  latencyMs: Number(process.env.BENCH_OUTPUTS_LATENCY_MS ?? 40),
  bytesPerSecond: Number(process.env.BENCH_OUTPUTS_MIB_PER_S ?? 1) * 1024 * 1024,
};
export const target = { completion_to_slowest_download_max: 1.2 }; // issue 20

async function download(url) {
  const t = now();
  const res = await fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  return { ms: now() - t, bytes: body.length };
}

export async function run() {
  const stack = await startStack({
    name: 'outputs',
    shaper: SHAPE,
    replicate: { trainingMs: 100, predictionMs: 300 },
    env: {
      RATE_LIMIT_PER_WINDOW: '100000',
      LOG_LEVEL: 'info',
      // Only the benchmark's webhook completes a prompt: the reconciler looks again in 10 minutes.
      PREDICTION_CHECK_INTERVAL_MS: '600000',
    },
  });
  const db = await stack.db();
  try {
    const account = await createAccount(stack);
    const { versionId } = await readyVersion(stack, db, account, 1000);
    const trials = [];
    for (let i = 0; i <= TRIALS; i++) {
      const trial = await oneTrial(stack, db, account, versionId, i);
      log(
        `outputs: ${i === 0 ? 'warm-up' : `trial ${i}`}: completion ${round(trial.completion_ms, 0)} ms, slowest download ${round(trial.slowest_download_ms, 0)} ms, sum of downloads ${round(trial.sum_downloads_ms, 0)} ms`,
      );
      if (i > 0) trials.push(trial);
    }

    // The same on bare loopback (no shaper): what the completion costs beyond the downloads.
    await stack.call('restart', { name: 'shaper', env: { SHAPER_LATENCY_MS: '0', SHAPER_BYTES_PER_S: '0' } });
    await waitFor(
      () =>
        fetch(`${stack.info.shaperUrl}/v1/account`, {
          headers: { authorization: `Bearer ${stack.info.replicate.token}` },
        }).then((r) => r.ok),
      { what: 'the shaper' },
    );
    const loopback = [];
    for (let i = 0; i <= 3; i++) {
      const trial = await oneTrial(stack, db, account, versionId, i);
      if (i > 0) loopback.push(trial);
    }

    const m = (list, k) => round(median(list.map((t) => t[k])), 0);
    const completion = m(trials, 'completion_ms');
    const slowest = m(trials, 'slowest_download_ms');
    const ratio = round(completion / slowest, 2);
    const lb = {
      completion_ms: m(loopback, 'completion_ms'),
      slowest_download_ms: m(loopback, 'slowest_download_ms'),
    };
    const bytes = trials[0].output_bytes;
    return {
      figures: {
        completion_ms: completion,
        trials_completion_ms: trials.map((t) => round(t.completion_ms, 0)),
        transfer_outputs_rpc_ms: m(trials, 'transfer_rpc_ms'),
        inferencer_webhook_rpc_ms: m(trials, 'inferencer_rpc_ms'),
        webhook_answer_ms: m(trials, 'webhook_answer_ms'),
        sum_of_downloads_ms: m(trials, 'sum_downloads_ms'),
        outputs: 4,
        size: `${SIZE}x${SIZE}`,
        output_bytes: bytes,
        shaper: {
          first_byte_latency_ms: SHAPE.latencyMs,
          mib_per_s_per_connection: SHAPE.bytesPerSecond / 1024 / 1024,
        },
        loopback_unshaped: { ...lb, ratio: round(lb.completion_ms / lb.slowest_download_ms, 2) },
      },
      baseline: {
        slowest_single_download_ms: slowest,
        trials_ms: trials.map((t) => round(t.slowest_download_ms, 0)),
      },
      ratio: { completion_to_slowest_download: ratio },
      target,
      met: ratio <= target.completion_to_slowest_download_max,
      details: { trials, loopback },
      table: [
        {
          figure: 'completion ms (shaped)',
          value: completion,
          baseline: slowest,
          ratio,
          target: `≤ ${target.completion_to_slowest_download_max}`,
          met: ratio <= target.completion_to_slowest_download_max,
        },
        {
          figure: 'completion ms (loopback)',
          value: lb.completion_ms,
          baseline: lb.slowest_download_ms,
          ratio: round(lb.completion_ms / lb.slowest_download_ms, 2),
          target: '',
          met: '',
        },
      ],
      notes: [
        `4 outputs of ${SIZE}×${SIZE} PNG (${bytes.map((b) => `${round(mib(b), 2)}`).join(', ')} MiB) served with ${SHAPE.latencyMs} ms first-byte latency and ${SHAPE.bytesPerSecond / 1024 / 1024} MiB/s per connection; baseline = the slowest of the 4 downloaded one at a time`,
        `completion = signed completion webhook POSTed to the gateway until the prompt is succeeded (gateway → inferencer: verify, record, answer; then inferencer's woken claim loop: copy via imager TransferOutputs, settle in billing, store images, finish); median of ${TRIALS}; the webhook itself answered in ${m(trials, 'webhook_answer_ms')} ms`,
        `inside it (median ms): imager TransferOutputs ${m(trials, 'transfer_rpc_ms')}, inferencer HandleReplicateEvent ${m(trials, 'inferencer_rpc_ms')}; sum of the 4 downloads one at a time ${m(trials, 'sum_downloads_ms')}`,
        `on bare loopback (no shaper): completion ${lb.completion_ms} ms vs slowest download ${lb.slowest_download_ms} ms — the fixed cost of settling, not the transfers`,
      ],
    };
  } finally {
    await db.end().catch(() => undefined);
    await stack.stop();
  }
}

async function oneTrial(stack, db, account, versionId, i) {
  await stack.call('dropWebhooks', { count: 1 });
  const res = await api(stack, `/api/v1/prompts/create/${versionId}`, {
    key: account.apiKey,
    method: 'POST',
    json: {
      prompt: `a photo of TOK dog, benchmark ${i} ${randomUUID()}`,
      num_outputs: 4,
      width: SIZE,
      height: SIZE,
    },
  });
  if (res.status !== 202) throw new Error(`prompts/create answered ${res.status}: ${await res.text()}`);
  const { prompt_id: promptId } = await res.json();
  const predictionId = await waitFor(
    async () =>
      (
        await db.query('SELECT replicate_prediction_id AS id FROM inferencer.prompts WHERE id = $1', [
          promptId,
        ])
      ).rows[0]?.id,
    { what: 'the prompt to have a prediction' },
  );
  const prediction = await stack.call('settled', { id: predictionId });
  if (prediction.status !== 'succeeded')
    throw new Error(`the sandbox prediction ${prediction.status}: ${prediction.error}`);

  // Baseline: each output downloaded alone, one after the other.
  const downloads = [];
  for (const url of prediction.output) downloads.push(await download(url));

  // The completion: the webhook Replicate would have sent, signed as it signs it.
  const body = JSON.stringify(prediction);
  const id = `msg_${randomUUID().replaceAll('-', '')}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const t = now();
  const hook = await fetch(`${stack.info.gatewayUrl}/api/v1/webhooks/replicate?kind=prediction`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(stack.info.replicate.webhookSecret, id, timestamp, body),
    },
    body,
  });
  const webhookMs = now() - t;
  if (hook.status !== 200) throw new Error(`the webhook answered ${hook.status}: ${await hook.text()}`);
  const rows = await waitFor(
    async () => {
      const { rows } = await db.query(
        `SELECT p.status, count(i.*)::int AS images, coalesce(sum(i.bytes), 0)::bigint AS bytes
           FROM inferencer.prompts p LEFT JOIN inferencer.prompt_images i ON i.prompt_id = p.id WHERE p.id = $1 GROUP BY p.status`,
        [promptId],
      );
      return !['starting', 'processing'].includes(rows[0]?.status) && rows;
    },
    { intervalMs: 5, what: 'the prompt to finish' },
  );
  const completionMs = now() - t;
  if (rows[0]?.status !== 'succeeded' || rows[0].images !== 4)
    throw new Error(`after the webhook the prompt is ${JSON.stringify(rows[0])}`);
  const logs = stack.info.logDir;
  const transfer = lastLog(
    path.join(logs, 'imager.log'),
    (j) => j.msg === 'rpc' && j.method === 'TransferOutputs',
  );
  const handled = lastLog(
    path.join(logs, 'inferencer.log'),
    (j) => j.msg === 'rpc' && j.method === 'HandleReplicateEvent',
  );
  return {
    completion_ms: completionMs,
    webhook_answer_ms: webhookMs,
    slowest_download_ms: Math.max(...downloads.map((d) => d.ms)),
    sum_downloads_ms: downloads.reduce((a, d) => a + d.ms, 0),
    downloads_ms: downloads.map((d) => round(d.ms, 0)),
    output_bytes: downloads.map((d) => d.bytes),
    transfer_rpc_ms: transfer?.duration_ms,
    inferencer_rpc_ms: handled?.duration_ms,
  };
}
