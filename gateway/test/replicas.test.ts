/**
 * Many replicas on one database and one Redis: two gateways share the per-resource locks, and
 * two inferencers' reconcilers never complete one prompt twice.
 */
import { Client } from 'pg';
import { loadConfig, type RunningService } from '@atelier/kit';
import { gatewayConfigSchema, startGateway, type RunningGateway } from '@atelier/gateway';
import { inferencerConfigSchema, startInferencer } from '@atelier/inferencer';
import {
  distinctPhotos,
  paidInitPayment,
  photoForm,
  readyVersion,
  startMesh,
  waitFor,
  type Mesh,
} from '@atelier/infra/testing';
import { sandboxModelVersion } from '../../services/inferencer/test/support/sandbox-version';

let mesh: Mesh;
let secondGateway: RunningGateway;
let secondInferencer: RunningService;
let db: Client;

beforeAll(async () => {
  mesh = await startMesh({
    // Small batches, frequent passes: both reconcilers are claiming while the other works.
    env: {
      RATE_LIMIT_PER_WINDOW: '100000',
      // All 12 prompts run at once (their webhooks never come), above any tier's default cap.
      TIER_LIMITS: JSON.stringify({ free: { promptsRunning: 1000 }, standard: { promptsRunning: 1000 } }),
      RECONCILE_INTERVAL_MS: '100',
      RECONCILE_BATCH: '2',
      PREDICTION_CHECK_INTERVAL_MS: '200',
    },
    replicate: { trainingMs: 100, predictionMs: 100 },
  });
  secondGateway = await startGateway(loadConfig(gatewayConfigSchema, { ...mesh.env, HTTP_PORT: '0' }));
  secondInferencer = await startInferencer(
    loadConfig(inferencerConfigSchema, { ...mesh.envFor('inferencer'), GRPC_PORT: '0' }),
  );
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
});
afterAll(async () => {
  await db?.end();
  await secondInferencer?.stop();
  await secondGateway?.stop();
  await mesh?.stop();
});

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

it('two gateways share the payment lock: 20 parallel uploads split between them start exactly one training', async () => {
  const account = await mesh.createAccount();
  const paymentId = await paidInitPayment(mesh, account);
  const photos = await distinctPhotos(5);
  const gateways = [mesh.gateway.url, secondGateway.url];
  const statuses = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      fetch(`${gateways[i % 2]}/api/v1/versions/train/${paymentId}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${account.apiKey}` },
        body: photoForm(photos),
      }).then((r) => r.status),
    ),
  );
  expect(statuses.filter((s) => s === 202)).toHaveLength(1);
  expect(statuses.filter((s) => s !== 202).every((s) => s === 409)).toBe(true);
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM trainer.versions WHERE payment_id = $1',
    [paymentId],
  );
  expect(rows[0]!.n).toBe(1);
});

it('two inferencers complete every prompt whose webhook never came, each exactly once', async () => {
  const N = 12;
  const account = await mesh.createAccount();
  const model = await sandboxModelVersion(mesh.replicate);
  const versionId = await readyVersion(mesh, account, N, model);

  mesh.replicate.faults.dropWebhooks();
  const claimsBefore = [
    await metric(mesh.inferencer.metricsPort, 'atelier_claim_loop_items_total'),
    await metric(secondInferencer.metricsPort, 'atelier_claim_loop_items_total'),
  ];
  const promptIds: string[] = [];
  for (let i = 0; i < N; i++) {
    const res = await mesh.api(`/api/v1/prompts/create/${versionId}`, {
      key: account.apiKey,
      method: 'POST',
      json: { prompt: `TOK dog ${i}`, num_outputs: 1 },
    });
    expect(res.status).toBe(202);
    promptIds.push(((await res.json()) as { prompt_id: string }).prompt_id);
  }
  await waitFor(
    async () => {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM inferencer.prompts WHERE id = ANY($1) AND status = 'succeeded'`,
        [promptIds],
      );
      return rows[0]!.n === N;
    },
    { timeoutMs: 30_000, what: 'the reconcilers to finish every prompt' },
  );
  const settles = await db.query<{ reservation_id: string; n: number }>(
    `SELECT reservation_id, count(*)::int AS n FROM billing.credit_ledger WHERE reservation_id = ANY($1) AND reason = 'settle' GROUP BY reservation_id`,
    [promptIds],
  );
  expect(settles.rows).toHaveLength(N);
  expect(settles.rows.every((r) => r.n === 1)).toBe(true);
  const images = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM inferencer.prompt_images WHERE prompt_id = ANY($1)',
    [promptIds],
  );
  expect(images.rows[0]!.n).toBe(N);
  const balance = await mesh.gateway.deps.mesh.billing.getCreditBalance({
    accountId: account.accountId,
    versionId,
  });
  expect(balance.balance).toEqual(expect.objectContaining({ granted: N, used: N, remaining: 0 }));
  // Both instances took part.
  const claimsAfter = [
    await metric(mesh.inferencer.metricsPort, 'atelier_claim_loop_items_total'),
    await metric(secondInferencer.metricsPort, 'atelier_claim_loop_items_total'),
  ];
  expect(claimsAfter[0]! - claimsBefore[0]!).toBeGreaterThan(0);
  expect(claimsAfter[1]! - claimsBefore[1]!).toBeGreaterThan(0);
});
