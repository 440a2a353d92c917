/**
 * Issue 13: copying a prediction's outputs runs on inferencer's claim loop, not on the webhook
 * path (which the gateway's deadline would cut). The whole mesh, with the bucket behind a TCP
 * proxy the test takes down: a success's webhook that arrives while the bucket is down is still
 * answered 200, the prompt waits with its credits reserved, and once the bucket is back the claim
 * loop copies the outputs and settles, exactly once.
 */
import { Client } from 'pg';
import {
  readyVersion,
  startMesh,
  startTcpProxy,
  waitFor,
  type Mesh,
  type TcpProxy,
  postReplicateWebhook,
} from '@atelier/infra/testing';
import { sandboxModelVersion } from '../../services/inferencer/test/support/sandbox-version';

let mesh: Mesh;
let db: Client;
let bucket: TcpProxy;

beforeAll(async () => {
  const s3 = new URL(process.env.S3_ENDPOINT!);
  bucket = await startTcpProxy({ host: s3.hostname, port: Number(s3.port) });
  mesh = await startMesh({
    env: {
      S3_ENDPOINT: `http://127.0.0.1:${bucket.port}`,
      RATE_LIMIT_PER_WINDOW: '100000',
      // A failed copy is tried again when the prompt's lease ends.
      PREDICTION_CHECK_INTERVAL_MS: '500',
    },
    replicate: { trainingMs: 100, predictionMs: 200 },
  });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await mesh?.stop();
  await bucket?.close();
});

/** Sum of one metric's samples whose labels include `labels`, from inferencer's /metrics. */
async function inferencerMetric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${mesh.inferencer.metricsPort}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

it('a success webhook arriving while the bucket is down is answered 200; the claim loop copies once it is back and settles once', async () => {
  const owner = await mesh.createAccount();
  const versionId = await readyVersion(mesh, owner, 4, await sandboxModelVersion(mesh.replicate));
  mesh.replicate.faults.dropWebhooks(1);
  const created = await mesh.api(`/api/v1/prompts/create/${versionId}`, {
    key: owner.apiKey,
    method: 'POST',
    json: { prompt: 'a photo of TOK dog', num_outputs: 2, width: 256, height: 256 },
  });
  expect(created.status).toBe(202);
  const { prompt_id: promptId } = (await created.json()) as { prompt_id: string };
  const predictionId = await waitFor(
    async () =>
      (
        await db.query<{ id: string }>(
          'SELECT replicate_prediction_id AS id FROM inferencer.prompts WHERE id = $1',
          [promptId],
        )
      ).rows[0]?.id,
    { what: 'the prompt to have a prediction' },
  );
  const prediction = await mesh.replicate.settled(predictionId);
  expect(prediction.object.status).toBe('succeeded');
  const status = async () =>
    (
      (await (await mesh.api(`/api/v1/prompts/${promptId}`, { key: owner.apiKey })).json()) as {
        status: string;
      }
    ).status;
  const reservation = async () =>
    (
      await db.query<{ status: string; settled: number }>(
        'SELECT status, settled FROM billing.credit_reservations WHERE id = $1',
        [promptId],
      )
    ).rows[0];

  bucket.down();
  const failedCopies = () =>
    inferencerMetric('atelier_claim_loop_items_total', 'loop="prompt-reconciler",outcome="failed"');
  const failedBefore = await failedCopies();
  const hook = await postReplicateWebhook(mesh, 'prediction', JSON.stringify(prediction.object));
  expect(hook.status).toBe(200);

  // The copy the webhook woke the claim loop for fails against the downed bucket; the prompt
  // waits, its credits still reserved.
  await waitFor(async () => (await failedCopies()) > failedBefore, {
    timeoutMs: 20_000,
    what: 'a copy attempt to fail while the bucket is down',
  });
  expect(['starting', 'processing']).toContain(await status());
  expect(await reservation()).toEqual({ status: 'open', settled: 0 });
  const reported = async () =>
    (
      await db.query<{ reported_success: unknown }>(
        'SELECT reported_success FROM inferencer.prompts WHERE id = $1',
        [promptId],
      )
    ).rows[0]!.reported_success;
  expect(await reported()).toMatchObject({ outputs: prediction.object.output });

  bucket.up();
  await waitFor(async () => (await status()) === 'succeeded', {
    timeoutMs: 20_000,
    what: 'the claim loop to copy the outputs once the bucket is back',
  });
  const images = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM inferencer.prompt_images WHERE prompt_id = $1',
    [promptId],
  );
  expect(images.rows[0]!.n).toBe(2);
  // Replicate's output URLs are kept only until the prompt finishes.
  expect(await reported()).toBeNull();
  expect(await reservation()).toEqual({ status: 'settled', settled: 2 });
  const closings = await db.query(
    "SELECT reason FROM billing.credit_ledger WHERE reservation_id = $1 AND reason IN ('settle', 'release')",
    [promptId],
  );
  expect(closings.rows).toEqual([{ reason: 'settle' }]);
  const usage = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM billing.usage WHERE kind = 'prediction' AND ref_id = $1",
    [promptId],
  );
  expect(usage.rows[0]!.n).toBe(1);
});
