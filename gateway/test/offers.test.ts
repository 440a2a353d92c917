/**
 * Offers and packs end to end: HTTP through the gateway, the whole in-process mesh, the Replicate
 * and Stripe sandboxes, real Postgres, Redis and bucket. Versions are made ready by the harness's
 * readyVersion (a paid init payment granting the credits, trainer's row written directly pointing
 * at a model version the Replicate sandbox really has).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { readyVersion as readyVersionOf, startMesh, waitFor, type Mesh } from '@atelier/infra/testing';
import { sandboxModelVersion } from '../../services/inferencer/test/support/sandbox-version';

let mesh: Mesh;
let db: Client;
let owner: { accountId: string; apiKey: string };
let model: { model: string; version: string; trainingId: string };

// The seeds of V45: three offers (4 + 3 + 3 images, one credit an image) and a pack of them.
const HEADSHOT = '0ffe0000-0000-4000-8000-000000000001';
const PACK = '9ac00000-0000-4000-8000-000000000001';
const PACK_VARIABLES = { background: 'grey', place: 'a park', painter: 'Rembrandt' };

interface RunJson {
  run_id: string;
  kind: string;
  offer_id: string | null;
  pack_id: string | null;
  version_id: string;
  variables: Record<string, string>;
  price_credits: number;
  images_expected: number;
  settled_credits: number | null;
  prompts: Array<{ prompt_id: string; status: string; prompt: string; images: unknown[] }>;
}

beforeAll(async () => {
  mesh = await startMesh({
    // Runs carry the tier's cap on prompts at once (standard: 8), not inferencer's default of 2,
    // which the seeded pack's 3 prompts would exceed.
    env: {
      RATE_LIMIT_PER_WINDOW: '100000',
      AUTH_CACHE_MS: '0',
      PREDICTION_CHECK_INTERVAL_MS: '300',
    },
    replicate: { trainingMs: 100, predictionMs: 300 },
  });
  db = new Client({ connectionString: mesh.db.url });
  await db.connect();
  owner = await mesh.createAccount();
  model = await sandboxModelVersion(mesh.replicate);
});
afterAll(async () => {
  await db?.end();
  await mesh?.stop();
});
afterEach(() => mesh.replicate.faults.clear());

/**
 * A ready version of `account` holding `credits` image credits, of class woman (the templates'
 * expected texts say so). On a pro plan: prompts of this account's earlier runs may still run,
 * and the cap is not what this file tests.
 */
const readyVersion = (account: { accountId: string; apiKey: string }, credits: number) =>
  readyVersionOf(mesh, account, credits, model, { className: 'woman', tier: 'pro' });

const remaining = async (versionId: string): Promise<number> => {
  const res = await mesh.api(`/api/v1/versions/info/${versionId}`, { key: owner.apiKey });
  expect(res.status).toBe(200);
  return ((await res.json()) as { images: { remaining: number } }).images.remaining;
};

const runOf = (what: 'offers' | 'packs', id: string, versionId: string, variables: Record<string, string>) =>
  mesh.api(`/api/v1/${what}/${id}/run/${versionId}`, {
    key: owner.apiKey,
    method: 'POST',
    json: { variables },
  });

const settled = (runId: string) =>
  waitFor(
    async () => {
      const res = await mesh.api(`/api/v1/runs/${runId}`, { key: owner.apiKey });
      expect(res.status).toBe(200);
      const run = (await res.json()) as RunJson;
      return run.settled_credits !== null && run;
    },
    { timeoutMs: 30_000, what: `run ${runId} to settle` },
  );

const reservation = async (id: string) =>
  (
    await db.query<{ amount: number; status: string; settled: number }>(
      'SELECT amount, status, settled FROM billing.credit_reservations WHERE id = $1',
      [id],
    )
  ).rows[0];

describe('offers', () => {
  it('lists the seeded offers and pack with the variables a run must give', async () => {
    const offers = await mesh.api('/api/v1/offers', { key: owner.apiKey });
    expect(offers.status).toBe(200);
    const { offers: list } = (await offers.json()) as {
      offers: Array<{ offer_id: string; create_qty: number; variables: string[] }>;
    };
    expect(list.find((o) => o.offer_id === HEADSHOT)).toEqual(
      expect.objectContaining({ create_qty: 4, variables: ['background'] }),
    );
    const packs = await mesh.api('/api/v1/packs', { key: owner.apiKey });
    const { packs: plist } = (await packs.json()) as {
      packs: Array<{ pack_id: string; price_credits: number; variables: string[] }>;
    };
    expect(plist.find((p) => p.pack_id === PACK)).toEqual(
      expect.objectContaining({ price_credits: 10, variables: ['background', 'place', 'painter'] }),
    );
  });

  it('an offer run fills the template from the version and the variables, spends create_qty credits, and lists its prompts together', async () => {
    const versionId = await readyVersion(owner, 10);
    const res = await runOf('offers', HEADSHOT, versionId, { background: 'blue' });
    expect(res.status).toBe(201);
    const run = (await res.json()) as RunJson;
    expect(run).toEqual(
      expect.objectContaining({ kind: 'offer', offer_id: HEADSHOT, price_credits: 4, images_expected: 4 }),
    );
    expect(run.prompts).toHaveLength(1);
    expect(run.prompts[0]!.prompt).toBe(
      'a professional corporate headshot of TOK woman, blue background, studio lighting, 85mm',
    );
    expect(await reservation(run.run_id)).toEqual(expect.objectContaining({ amount: 4 }));
    const done = await settled(run.run_id);
    expect(done.settled_credits).toBe(4);
    expect(done.prompts.map((p) => p.status)).toEqual(['succeeded']);
    expect(done.prompts[0]!.images).toHaveLength(4);
    expect(await remaining(versionId)).toBe(6);
    expect(await reservation(run.run_id)).toEqual({ amount: 4, status: 'settled', settled: 4 });
  });

  it('a missing or unknown variable is a 400 naming it, and nothing is reserved', async () => {
    const versionId = await readyVersion(owner, 10);
    const missing = await runOf('offers', HEADSHOT, versionId, {});
    expect(missing.status).toBe(400);
    expect(JSON.stringify(await missing.json())).toMatch(/missing variable: background/);
    const unknown = await runOf('offers', HEADSHOT, versionId, { background: 'x', mood: 'happy' });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(await unknown.json())).toMatch(/unknown variable: mood/);
    expect(await remaining(versionId)).toBe(10);
  });

  it('a repeated identical run within a minute returns the first run; other inputs make a new one', async () => {
    const versionId = await readyVersion(owner, 10);
    const first = await runOf('offers', HEADSHOT, versionId, { background: 'red' });
    expect(first.status).toBe(201);
    const again = await runOf('offers', HEADSHOT, versionId, { background: 'red' });
    expect(again.status).toBe(200);
    const a = (await first.json()) as RunJson;
    const b = (await again.json()) as RunJson;
    expect(b.run_id).toBe(a.run_id);
    const other = await runOf('offers', HEADSHOT, versionId, { background: 'green' });
    expect(other.status).toBe(201);
    expect(((await other.json()) as RunJson).run_id).not.toBe(a.run_id);
    await settled(a.run_id);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.runs WHERE version_id = $1',
      [versionId],
    );
    expect(rows[0]!.n).toBe(2);
  });
});

describe('packs', () => {
  it('a pack run on a version with too few credits is refused whole (402) and nothing runs', async () => {
    const versionId = await readyVersion(owner, 9);
    const res = await runOf('packs', PACK, versionId, PACK_VARIABLES);
    expect(res.status).toBe(402);
    expect(await res.json()).toEqual(expect.objectContaining({ status: 402, remaining: 9 }));
    expect(await remaining(versionId)).toBe(9);
    const prompts = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.prompts WHERE version_id = $1',
      [versionId],
    );
    expect(prompts.rows[0]!.n).toBe(0);
    const runs = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM inferencer.runs WHERE version_id = $1',
      [versionId],
    );
    expect(runs.rows[0]!.n).toBe(0);
  });

  it('a pack run reserves once for every offer; a failing prediction settles only the images produced', async () => {
    const versionId = await readyVersion(owner, 12);
    mesh.replicate.faults.failNextRuns({ kind: 'prediction', count: 1 });
    const res = await runOf('packs', PACK, versionId, PACK_VARIABLES);
    expect(res.status).toBe(201);
    const run = (await res.json()) as RunJson;
    expect(run).toEqual(
      expect.objectContaining({ kind: 'pack', pack_id: PACK, price_credits: 10, images_expected: 10 }),
    );
    expect(run.prompts).toHaveLength(3);
    expect(await reservation(run.run_id)).toEqual(expect.objectContaining({ amount: 10 }));
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM billing.credit_reservations WHERE id = ANY($1)',
      [run.prompts.map((p) => p.prompt_id)],
    );
    expect(rows[0]!.n).toBe(0);

    const done = await settled(run.run_id);
    const statuses = done.prompts.map((p) => p.status).sort();
    expect(statuses).toEqual(['failed', 'succeeded', 'succeeded']);
    const produced = done.prompts.reduce((n, p) => n + p.images.length, 0);
    expect(produced).toBeGreaterThan(0);
    expect(produced).toBeLessThan(10);
    expect(done.settled_credits).toBe(produced);
    expect(await reservation(run.run_id)).toEqual({ amount: 10, status: 'settled', settled: produced });
    expect(await remaining(versionId)).toBe(12 - produced);

    // Usage puts the run's images and predict time on the model, never a line per prompt.
    type Usage = {
      versions: Array<{ version_id: string | null; images: number; predict_seconds: number }>;
      total: { images: number };
    };
    const usage = (await (await mesh.api('/api/v1/usage', { key: owner.apiKey })).json()) as Usage;
    const lines = usage.versions.map((v) => v.version_id);
    for (const p of run.prompts) expect(lines).not.toContain(p.prompt_id);
    const line = usage.versions.find((v) => v.version_id === versionId)!;
    expect(line.images).toBe(produced);
    expect(line.predict_seconds).toBeGreaterThan(0);
    // A range without any usage is a page of zeros, not an error.
    const empty = await mesh.api('/api/v1/usage?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z', {
      key: owner.apiKey,
    });
    expect(empty.status).toBe(200);
    expect(((await empty.json()) as Usage).total).toEqual(expect.objectContaining({ images: 0 }));
  });
});

describe('Idempotency-Key of runs', () => {
  it('an offer or pack run holds its key for as long as its call may run, plus the margin, never less', async () => {
    const versionId = await readyVersion(owner, 14);
    const { mesh: clients, redis, config } = mesh.gateway.deps;
    const markerOf = (key: string) =>
      `idem:${owner.accountId}:${createHash('sha256').update(key).digest('hex')}`;
    // What the in-flight marker has left when the gateway makes the run's call, and the call's deadline.
    const seen: Array<{ call: string; timeoutMs: number | undefined; markerMs: number }> = [];
    type Call = (request: unknown, opts?: { timeoutMs?: number }) => Promise<unknown>;
    const inferencer = clients.inferencer as unknown as Record<'runOffer' | 'runPack', Call>;
    const watch = (name: 'runOffer' | 'runPack', key: string) => {
      const original = inferencer[name].bind(inferencer);
      return jest.spyOn(inferencer, name).mockImplementation(async (request, opts) => {
        seen.push({ call: name, timeoutMs: opts?.timeoutMs, markerMs: await redis.pttl(markerOf(key)) });
        return original(request, opts);
      });
    };
    const run = async (what: 'offers' | 'packs', id: string, variables: Record<string, string>) => {
      const key = randomUUID();
      const spy = watch(what === 'offers' ? 'runOffer' : 'runPack', key);
      try {
        const res = await mesh.api(`/api/v1/${what}/${id}/run/${versionId}`, {
          key: owner.apiKey,
          method: 'POST',
          json: { variables },
          headers: { 'idempotency-key': key },
        });
        expect(res.status).toBe(201);
        return (await res.json()) as RunJson;
      } finally {
        spy.mockRestore();
      }
    };
    const offerRun = await run('offers', HEADSHOT, { background: 'teal' });
    const packRun = await run('packs', PACK, PACK_VARIABLES);
    expect(seen.map((s) => s.call)).toEqual(['runOffer', 'runPack']);
    for (const { timeoutMs, markerMs } of seen) {
      // A run starts several predictions: its call may take twice a plain call's deadline.
      expect(timeoutMs).toBe(config.GRPC_TIMEOUT_MS * 2);
      // The key stays claimed past the call's deadline (a retry then cannot start the run again),
      // and no longer than that plus the 2 s margin.
      expect(markerMs).toBeGreaterThan(timeoutMs!);
      expect(markerMs).toBeLessThanOrEqual(timeoutMs! + 2_000);
    }
    await settled(offerRun.run_id);
    await settled(packRun.run_id);
  });
});
