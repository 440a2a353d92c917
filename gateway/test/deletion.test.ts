/**
 * Data lifecycle end to end: deleting a version, deleting an account and the training zip's
 * retention, through the gateway and the whole mesh, the Replicate sandbox and the real bucket.
 *
 * The bucket the harness runs (s3rver) has no object versioning: it answers ListObjectVersions
 * with 405, so imager falls back to listing and deleting objects, and these tests check the
 * bucket with a plain listing too (and that s3rver still refuses version listings, so a harness
 * that gains versioning makes this file say so). The deletion jobs are driven here one pass at a
 * time (claim, then run each row), as the claim loop drives them, so every step is
 * deterministic; time moves by the jobs' clock, never by sleeping.
 */
import { ListObjectVersionsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Client } from 'pg';
import { loadConfig } from '@atelier/kit';
import { imagerConfigSchema, startImager } from '@atelier/imager';
import { startTrainer, trainerConfigSchema, type RunningTrainer } from '@atelier/trainer';
import {
  distinctPhotos,
  paidInitPayment,
  photoForm,
  startMesh,
  startTcpProxy,
  waitFor,
  type Mesh,
} from '@atelier/infra/testing';

type Account = { accountId: string; apiKey: string };
type Job<R> = { claim(limit?: number): Promise<R[]>; handle(row: R): Promise<void> };

let mesh: Mesh;
let db: Client;
let s3: S3Client;
const DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  mesh = await startMesh({
    env: {
      RATE_LIMIT_PER_WINDOW: '100000',
      AUTH_CACHE_MS: '0',
      DELETION_LEASE_MS: '60000',
      // The tests drive the mesh trainer's deletion jobs pass by pass; its own loops stay idle.
      DELETION_INTERVAL_MS: '3600000',
      DELETION_RETRY_BASE_MS: '1',
      DELETION_RETRY_MAX_MS: '1',
    },
    replicate: { trainingMs: 100, predictionMs: 100 },
  });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  s3 = new S3Client({
    endpoint: mesh.env.S3_ENDPOINT,
    region: mesh.env.S3_REGION,
    credentials: { accessKeyId: mesh.env.S3_ACCESS_KEY_ID!, secretAccessKey: mesh.env.S3_SECRET_ACCESS_KEY! },
    forcePathStyle: true,
  });
});
afterAll(async () => {
  s3?.destroy();
  await db?.end();
  await mesh?.stop();
});

const trainer = () => mesh.trainer as RunningTrainer;

/** One pass of a job: claim, then run every claimed row. How many rows it claimed. */
async function pass<R>(job: Job<R>): Promise<number> {
  const rows = await job.claim();
  for (const row of rows) await job.handle(row);
  return rows.length;
}

/** Passes until a pass claims nothing and the queue has nothing unfinished. */
async function drain<R>(job: Job<R>, unfinished: () => Promise<number>): Promise<void> {
  await waitFor(async () => (await pass(job)) === 0 && (await unfinished()) === 0, {
    timeoutMs: 30_000,
    what: 'the deletion queue to be empty',
  });
}

const pendingVersionDeletions = async () =>
  Number(
    (
      await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM trainer.version_deletions WHERE completed_at IS NULL',
      )
    ).rows[0]!.n,
  );
const pendingAccountDeletions = async () =>
  Number(
    (
      await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM trainer.account_deletions WHERE completed_at IS NULL',
      )
    ).rows[0]!.n,
  );

/** Every key under the prefix (s3rver has no versions: see the file's comment). */
async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: mesh.env.S3_BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
    out.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** A version trained from real photos through the upload route, ready, with credits. */
async function trainedVersion(account: Account, credits: number): Promise<string> {
  const paymentId = await paidInitPayment(mesh, account, credits);
  const res = await mesh.api(`/api/v1/versions/train/${paymentId}`, {
    key: account.apiKey,
    method: 'POST',
    body: photoForm(await distinctPhotos(5), { class: 'man' }),
  });
  expect(res.status).toBe(202);
  const { version_id } = (await res.json()) as { version_id: string };
  await waitFor(
    async () =>
      (
        (await (await mesh.api(`/api/v1/versions/info/${version_id}`, { key: account.apiKey })).json()) as {
          is_ready: boolean;
          images: { granted: number };
        }
      ).is_ready,
    { timeoutMs: 20_000, what: `version ${version_id} to be ready` },
  );
  return version_id;
}

/** A succeeded prompt with its images in the bucket. */
async function promptWithImages(account: Account, versionId: string, text: string): Promise<string> {
  const res = await mesh.api(`/api/v1/prompts/create/${versionId}`, {
    key: account.apiKey,
    method: 'POST',
    json: { prompt: text, num_outputs: 2, width: 512, height: 512 },
  });
  expect(res.status).toBe(202);
  const { prompt_id } = (await res.json()) as { prompt_id: string };
  await waitFor(
    async () =>
      (
        (await (await mesh.api(`/api/v1/prompts/${prompt_id}`, { key: account.apiKey })).json()) as {
          status: string;
        }
      ).status === 'succeeded',
    { timeoutMs: 20_000, what: `prompt ${prompt_id} to succeed` },
  );
  return prompt_id;
}

const modelOf = async (versionId: string): Promise<{ model: string; replicate_version: string }> =>
  (
    await db.query<{ model: string; replicate_version: string }>(
      'SELECT model, replicate_version FROM trainer.versions WHERE id = $1',
      [versionId],
    )
  ).rows[0]!;

const remaining = async (account: Account, versionId: string) =>
  (
    await mesh.gateway.deps.mesh.billing.getCreditBalance({
      accountId: account.accountId,
      versionId,
    })
  ).balance!.remaining;

it('the harness bucket has no object versioning, so deletions are checked with plain listings', async () => {
  await expect(
    s3.send(new ListObjectVersionsCommand({ Bucket: mesh.env.S3_BUCKET, Prefix: 'datasets/' })),
  ).rejects.toMatchObject({ $metadata: { httpStatusCode: 405 } });
});

it("deleting a version erases it everywhere and never touches another account's version with the same plan and prompt", async () => {
  const alice = await mesh.createAccount();
  const bob = await mesh.createAccount();
  // The same plan (test_init_10) for both, and prompts of the same text.
  const aliceVersion = await trainedVersion(alice, 10);
  const bobVersion = await trainedVersion(bob, 10);
  const alicePrompt = await promptWithImages(alice, aliceVersion, 'a portrait of TOK in the rain');
  const bobPrompt = await promptWithImages(bob, bobVersion, 'a portrait of TOK in the rain');
  const aliceModel = await modelOf(aliceVersion);
  const bobModel = await modelOf(bobVersion);
  // Counted before the offer run: its outputs may or may not be copied yet, whatever the load.
  const aliceKeys = [
    ...(await keys(`datasets/${alice.accountId}/`)),
    ...(await keys(`outputs/${alice.accountId}/`)),
  ];
  expect(aliceKeys).toHaveLength(3); // the zip and two images
  // An offer run: what the customer typed into its variables is erased with the prompts.
  const offers = (await (await mesh.api('/api/v1/offers', { key: alice.apiKey })).json()) as {
    offers: Array<{ offer_id: string; create_qty: number; variables: string[] }>;
  };
  const offer = offers.offers.find((o) => o.variables.length > 0 && o.create_qty <= 4)!;
  const run = await mesh.api(`/api/v1/offers/${offer.offer_id}/run/${aliceVersion}`, {
    key: alice.apiKey,
    method: 'POST',
    json: { variables: Object.fromEntries(offer.variables.map((v) => [v, `alice's ${v}`])) },
  });
  expect(run.status).toBe(201);
  const runId = ((await run.json()) as { run_id: string }).run_id;

  const bobBefore = [
    ...(await keys(`datasets/${bob.accountId}/`)),
    ...(await keys(`outputs/${bob.accountId}/`)),
  ].sort();
  expect(bobBefore).toHaveLength(3);
  expect(mesh.replicate.models()).toEqual(expect.arrayContaining([aliceModel.model, bobModel.model]));
  const bobRemaining = await remaining(bob, bobVersion);

  // Someone else's version is unknown, not deletable.
  expect(
    (await mesh.api(`/api/v1/versions/${aliceVersion}`, { key: bob.apiKey, method: 'DELETE' })).status,
  ).toBe(404);

  const accepted = await mesh.api(`/api/v1/versions/${aliceVersion}`, {
    key: alice.apiKey,
    method: 'DELETE',
  });
  expect(accepted.status).toBe(202);
  expect(await accepted.json()).toMatchObject({ id: aliceVersion, status: 'deleting' });
  // Gone for the customer at once; a repeat while the job has not run is accepted again.
  const info = await mesh.api(`/api/v1/versions/info/${aliceVersion}`, { key: alice.apiKey });
  expect(info.status).toBe(410);
  expect(((await info.json()) as { type: string }).type).toMatch(/version-deleted$/);
  expect(
    (await mesh.api(`/api/v1/versions/${aliceVersion}`, { key: alice.apiKey, method: 'DELETE' })).status,
  ).toBe(202);
  expect(
    (
      await mesh.api(`/api/v1/prompts/create/${aliceVersion}`, {
        key: alice.apiKey,
        method: 'POST',
        json: { prompt: 'x', num_outputs: 1 },
      })
    ).status,
  ).toBe(410);

  await drain(trainer().jobs.versionDeletion, pendingVersionDeletions);

  // The bucket holds nothing of Alice's version; Bob's objects are all there.
  expect(await keys(`datasets/${alice.accountId}/`)).toEqual([]);
  expect(await keys(`outputs/${alice.accountId}/`)).toEqual([]);
  expect(
    [...(await keys(`datasets/${bob.accountId}/`)), ...(await keys(`outputs/${bob.accountId}/`))].sort(),
  ).toEqual(bobBefore);

  // Replicate: Alice's model, its version and its predictions are gone; Bob's are there.
  expect(mesh.replicate.models()).not.toContain(aliceModel.model);
  expect(mesh.replicate.models()).toContain(bobModel.model);
  const versionsRun = mesh.replicate.predictions().map((p) => p.object.version);
  expect(versionsRun).not.toContain(aliceModel.replicate_version.split(':').at(-1));
  expect(versionsRun).toContain(bobModel.replicate_version.split(':').at(-1));

  // The prompt and its listing answer 410; the texts are erased in the database too.
  expect((await mesh.api(`/api/v1/prompts/${alicePrompt}`, { key: alice.apiKey })).status).toBe(410);
  expect((await mesh.api(`/api/v1/prompts/list/${aliceVersion}`, { key: alice.apiKey })).status).toBe(410);
  const rows = await db.query(
    'SELECT prompt, negative_prompt, erased_at FROM inferencer.prompts WHERE version_id = $1',
    [aliceVersion],
  );
  expect(rows.rows).toHaveLength(2); // the prompt and the offer run's
  for (const row of rows.rows)
    expect(row).toEqual({ prompt: '', negative_prompt: '', erased_at: expect.any(Date) });
  expect((await db.query('SELECT variables FROM inferencer.runs WHERE id = $1', [runId])).rows).toEqual([
    { variables: {} },
  ]);
  expect(
    (
      await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM inferencer.prompt_images WHERE prompt_id = $1',
        [alicePrompt],
      )
    ).rows[0]!.n,
  ).toBe(0);

  // Credits forfeited; billing rows stay.
  expect(await remaining(alice, aliceVersion)).toBe(0);
  expect(
    (
      await db.query(`SELECT reason FROM billing.credit_ledger WHERE version_id = $1 ORDER BY id`, [
        aliceVersion,
      ])
    ).rows.map((r: { reason: string }) => r.reason),
  ).toEqual(expect.arrayContaining(['grant', 'forfeit']));

  // Bob's version and prompt are untouched.
  const bobGet = await mesh.api(`/api/v1/prompts/${bobPrompt}`, { key: bob.apiKey });
  expect(bobGet.status).toBe(200);
  expect(((await bobGet.json()) as { prompt: string }).prompt).toBe('a portrait of TOK in the rain');
  expect(await remaining(bob, bobVersion)).toBe(bobRemaining);
  expect((await mesh.api(`/api/v1/versions/info/${bobVersion}`, { key: bob.apiKey })).status).toBe(200);

  // Done: a repeat now answers 410.
  expect(
    (await mesh.api(`/api/v1/versions/${aliceVersion}`, { key: alice.apiKey, method: 'DELETE' })).status,
  ).toBe(410);
});

it("a deleted version's credits are forfeited on the deletion's first pass, before Replicate lets go of the model, and it takes no add-on (410)", async () => {
  const frank = await mesh.createAccount();
  const version = await trainedVersion(frank, 10);
  const deletion = async () =>
    (await db.query('SELECT completed_at FROM trainer.version_deletions WHERE version_id = $1', [version]))
      .rows[0] as { completed_at: Date | null };
  // Replicate refuses to delete the model for now: the deletion cannot finish on this pass.
  mesh.replicate.faults.failNextApiCalls({ status: 502, method: 'DELETE', path: /\/models\//, count: 1000 });
  try {
    expect(
      (await mesh.api(`/api/v1/versions/${version}`, { key: frank.apiKey, method: 'DELETE' })).status,
    ).toBe(202);
    expect(await pass(trainer().jobs.versionDeletion)).toBe(1);
    expect(await deletion()).toEqual({ completed_at: null });
    expect(await remaining(frank, version)).toBe(0);

    const addon = await mesh.api('/api/v1/payments/create', {
      key: frank.apiKey,
      method: 'POST',
      json: { plan_id: 'basic_extra_creds', version_id: version },
    });
    expect(addon.status).toBe(410);
    expect(((await addon.json()) as { type: string }).type).toMatch(/version-deleted$/);
    // No payment row for it, so no Checkout Session: billing opens one only for the row it wrote.
    expect(
      (await db.query('SELECT plan_id FROM billing.payments WHERE version_id = $1', [version])).rows,
    ).toEqual([{ plan_id: 'test_init_10' }]);
  } finally {
    mesh.replicate.faults.clear();
  }
  await drain(trainer().jobs.versionDeletion, pendingVersionDeletions);
  expect(await deletion()).toEqual({ completed_at: expect.any(Date) });
});

it('a deletion interrupted by a killed replica, then by a failing bucket, completes after restart', async () => {
  const carol = await mesh.createAccount();
  const version = await trainedVersion(carol, 10);
  expect(await keys(`datasets/${carol.accountId}/`)).toHaveLength(1);
  expect(
    (await mesh.api(`/api/v1/versions/${version}`, { key: carol.apiKey, method: 'DELETE' })).status,
  ).toBe(202);

  // A replica claims the deletion and dies before doing any of it: its claim is all it did.
  expect(await trainer().jobs.versionDeletion.claim()).toEqual([expect.objectContaining({ id: version })]);
  // The lease holds the row: no replica finds anything to do until it ends.
  expect(await trainer().jobs.versionDeletion.claim()).toEqual([]);

  // A replica started after the lease ended takes it over on its own claim loop, with a bucket
  // that is down: the deletion fails, is kept with its error, and is retried until it succeeds.
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(mesh.env.S3_ENDPOINT!).port) });
  proxy.down();
  const imager = await startImager(
    loadConfig(imagerConfigSchema, {
      ...mesh.env,
      GRPC_PORT: '0',
      S3_ENDPOINT: `http://${proxy.address}`,
      S3_MAX_ATTEMPTS: '1',
    }),
  );
  const restarted = await startTrainer(
    loadConfig(trainerConfigSchema, {
      ...mesh.envFor('trainer'),
      GRPC_PORT: '0',
      IMAGER_ADDR: imager.address,
      DELETION_INTERVAL_MS: '100',
    }),
    // Its clock runs a lease ahead of the others'.
    { now: () => new Date(Date.now() + 61_000) },
  );
  const row = async () =>
    (
      await db.query(
        'SELECT completed_at, last_error, attempts FROM trainer.version_deletions WHERE version_id = $1',
        [version],
      )
    ).rows[0] as { completed_at: Date | null; last_error: string | null; attempts: number };
  try {
    const failed = await waitFor(async () => ((await row()).last_error ? row() : undefined), {
      timeoutMs: 30_000,
      what: 'the deletion to fail on the bucket',
    });
    expect(failed.completed_at).toBeNull();
    expect(failed.attempts).toBeGreaterThanOrEqual(2);
    expect(failed.last_error).toMatch(/bucket|unavailable|imager/i);
    expect(await keys(`datasets/${carol.accountId}/`)).toHaveLength(1);

    proxy.up();
    await waitFor(async () => (await row()).completed_at, {
      timeoutMs: 30_000,
      what: 'the deletion to complete once the bucket is back',
    });
  } finally {
    await restarted.stop();
    await imager.stop();
    await proxy.close();
  }
  expect(await keys(`datasets/${carol.accountId}/`)).toEqual([]);
  expect(mesh.replicate.models()).not.toContain((await modelOf(version)).model);
  expect(
    (await mesh.api(`/api/v1/versions/${version}`, { key: carol.apiKey, method: 'DELETE' })).status,
  ).toBe(410);
});

it('deleting an account deletes every version, then revokes its keys and erases its email', async () => {
  const dave = await mesh.createAccount();
  // An endpoint that never answers: its deliveries wait, with payloads naming Dave's models.
  const endpoint = await mesh.api('/api/v1/webhook-endpoints', {
    key: dave.apiKey,
    method: 'POST',
    json: { url: 'http://127.0.0.1:9/hooks', events: [] },
  });
  expect(endpoint.status).toBe(201);
  const webhookRows = async () =>
    (
      await db.query(
        `SELECT (SELECT count(*)::int FROM billing.webhook_endpoints WHERE account_id = $1) AS endpoints,
                (SELECT count(*)::int FROM billing.webhook_events WHERE account_id = $1) AS events,
                (SELECT count(*)::int FROM billing.webhook_deliveries WHERE account_id = $1) AS deliveries`,
        [dave.accountId],
      )
    ).rows[0] as { endpoints: number; events: number; deliveries: number };
  const first = await trainedVersion(dave, 10);
  const second = await trainedVersion(dave, 10);
  await promptWithImages(dave, second, 'a portrait of TOK');

  await waitFor(async () => (await webhookRows()).deliveries > 0, { what: "an event for Dave's endpoint" });

  const res = await mesh.api('/api/v1/account', { key: dave.apiKey, method: 'DELETE' });
  expect(res.status).toBe(202);
  expect((await mesh.api(`/api/v1/versions/info/${first}`, { key: dave.apiKey })).status).toBe(410);
  // Deleted models leave the listing at once.
  expect(
    ((await (await mesh.api('/api/v1/versions', { key: dave.apiKey })).json()) as { versions: unknown[] })
      .versions,
  ).toEqual([]);
  // The account waits for its versions: its first pass finds them unfinished.
  expect(await pass(trainer().jobs.accountDeletion)).toBe(1);
  expect(await pendingAccountDeletions()).toBe(1);

  await drain(trainer().jobs.versionDeletion, pendingVersionDeletions);
  await drain(trainer().jobs.accountDeletion, pendingAccountDeletions);

  expect(await keys(`datasets/${dave.accountId}/`)).toEqual([]);
  expect(await keys(`outputs/${dave.accountId}/`)).toEqual([]);
  for (const v of [first, second]) expect(mesh.replicate.models()).not.toContain((await modelOf(v)).model);
  expect((await mesh.api('/api/v1/account', { key: dave.apiKey, method: 'DELETE' })).status).toBe(401);
  const account = await db.query('SELECT email, deleted_at FROM billing.accounts WHERE id = $1', [
    dave.accountId,
  ]);
  expect(account.rows[0]).toEqual({ email: null, deleted_at: expect.any(Date) });
  expect(
    (
      await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM billing.api_keys WHERE account_id = $1 AND revoked_at IS NULL',
        [dave.accountId],
      )
    ).rows[0]!.n,
  ).toBe(0);
  // Endpoints, events and deliveries are gone, and the deletion's own events found no account.
  expect(await webhookRows()).toEqual({ endpoints: 0, events: 0, deliveries: 0 });
  // Payments stay for accounting.
  expect(
    (
      await db.query<{ n: number }>('SELECT count(*)::int AS n FROM billing.payments WHERE account_id = $1', [
        dave.accountId,
      ])
    ).rows[0]!.n,
  ).toBe(2);
});

it('a training zip disappears once its retention has passed, and not before', async () => {
  const erin = await mesh.createAccount();
  const version = await trainedVersion(erin, 10);
  const zip = await keys(`datasets/${erin.accountId}/`);
  expect(zip).toEqual([`datasets/${erin.accountId}/${version}.zip`]);

  let clock = Date.now();
  const later = await startTrainer(
    loadConfig(trainerConfigSchema, { ...mesh.envFor('trainer'), GRPC_PORT: '0' }),
    {
      now: () => new Date(clock),
    },
  );
  try {
    const retention = later.jobs.datasetRetention;
    const mine = async () => (await retention.claim()).filter((v) => v.id === version);
    // Six days after the training: kept.
    clock = Date.now() + 6 * DAY;
    expect(await mine()).toEqual([]);
    expect(await keys(`datasets/${erin.accountId}/`)).toEqual(zip);
    // Past the default seven days: claimed and deleted.
    clock = Date.now() + 7 * DAY + 60_000;
    const due = await mine();
    expect(due).toHaveLength(1);
    await retention.handle(due[0]!);
  } finally {
    await later.stop();
  }
  expect(await keys(`datasets/${erin.accountId}/`)).toEqual([]);
  expect(
    (
      await db.query<{ dataset_deleted_at: Date | null }>(
        'SELECT dataset_deleted_at FROM trainer.versions WHERE id = $1',
        [version],
      )
    ).rows[0]!.dataset_deleted_at,
  ).toEqual(expect.any(Date));
  // The version itself stays usable: only the photos went.
  expect((await mesh.api(`/api/v1/versions/info/${version}`, { key: erin.apiKey })).status).toBe(200);
});
