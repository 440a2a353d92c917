/**
 * The claim loop every reconciler and job runs on: scheduling and stopping on a fake clock, then
 * against a real Postgres table claimed the way the contract says (SKIP LOCKED plus a lease).
 */
import { Pool } from 'pg';
import { Registry } from 'prom-client';
import { createClaimLoop, createLogger, currentContext, type ClaimLoop } from '@atelier/kit';
import { createTestDatabase, waitFor, type TestDatabase } from '@atelier/infra/testing';

const logger = createLogger('claim-loop-test', 'silent');

describe('scheduling (fake clock)', () => {
  function setup() {
    let finishPass!: (rows: string[]) => void;
    const claim = jest.fn(() => new Promise<string[]>((resolve) => (finishPass = resolve)));
    const loop = createClaimLoop({
      name: 'fake',
      claim,
      handle: async () => undefined,
      idOf: (id) => id,
      intervalMs: 1000,
      batch: 10,
      concurrency: 2,
      logger,
      metrics: { registry: new Registry() },
    });
    return { loop, claim, finishPass: (rows: string[] = []) => finishPass(rows) };
  }

  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('runs a pass every interval, one at a time', async () => {
    const { loop, claim, finishPass } = setup();
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(claim).toHaveBeenCalledTimes(1);
    // A slow pass is not overlapped by the next one.
    await jest.advanceTimersByTimeAsync(5_000);
    expect(claim).toHaveBeenCalledTimes(1);
    finishPass();
    await jest.advanceTimersByTimeAsync(1_000);
    expect(claim).toHaveBeenCalledTimes(2);
    finishPass();
    await loop.stop();
  });

  it('wake() runs a pass now instead of at the next interval, or right after the pass under way', async () => {
    const { loop, claim, finishPass } = setup();
    loop.wake(); // not started: nothing
    await jest.advanceTimersByTimeAsync(0);
    expect(claim).toHaveBeenCalledTimes(0);
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(claim).toHaveBeenCalledTimes(1);
    finishPass();
    await jest.advanceTimersByTimeAsync(10);
    // Idle until the interval: a wake-up starts the next pass at once.
    loop.wake();
    await jest.advanceTimersByTimeAsync(0);
    expect(claim).toHaveBeenCalledTimes(2);
    // During a pass, wake-ups coalesce into one pass right after it.
    loop.wake();
    loop.wake();
    await jest.advanceTimersByTimeAsync(0);
    expect(claim).toHaveBeenCalledTimes(2);
    finishPass();
    await jest.advanceTimersByTimeAsync(0);
    expect(claim).toHaveBeenCalledTimes(3);
    finishPass();
    await jest.advanceTimersByTimeAsync(999);
    expect(claim).toHaveBeenCalledTimes(3);
    await jest.advanceTimersByTimeAsync(1);
    expect(claim).toHaveBeenCalledTimes(4);
    finishPass();
    await loop.stop();
    loop.wake(); // stopped: nothing
    await jest.advanceTimersByTimeAsync(60_000);
    expect(claim).toHaveBeenCalledTimes(4);
  });

  it('a pass that claimed a full batch is followed at once; a partial one waits for the interval', async () => {
    const { loop, claim, finishPass } = setup();
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(claim).toHaveBeenCalledTimes(1);
    finishPass(Array.from({ length: 10 }, (_, i) => `row-${i}`)); // batch is 10: a backlog
    await jest.advanceTimersByTimeAsync(0);
    expect(claim).toHaveBeenCalledTimes(2);
    finishPass(['row-10']); // the backlog's tail
    await jest.advanceTimersByTimeAsync(999);
    expect(claim).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(claim).toHaveBeenCalledTimes(3);
    finishPass();
    await loop.stop();
  });

  it('stop() waits for the pass in flight and schedules no other', async () => {
    const { loop, claim, finishPass } = setup();
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finishPass();
    await stopping;
    await jest.advanceTimersByTimeAsync(60_000);
    expect(claim).toHaveBeenCalledTimes(1);
  });
});

describe('on Postgres', () => {
  let tdb: TestDatabase;
  let pools: Pool[] = [];
  let loops: ClaimLoop[] = [];

  const pool = () => {
    const p = new Pool({ connectionString: tdb.url, max: 4 });
    pools.push(p);
    return p;
  };

  beforeAll(async () => {
    tdb = await createTestDatabase();
    const p = pool();
    await p.query(`CREATE TABLE jobs (
      id int PRIMARY KEY,
      next_check_at timestamptz NOT NULL DEFAULT now(),
      attempts int NOT NULL DEFAULT 0,
      done_at timestamptz
    )`);
  });
  afterEach(async () => {
    await Promise.all(loops.map((l) => l.stop()));
    loops = [];
    await pools[0]!.query('TRUNCATE jobs');
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    pools = [];
    await tdb?.drop();
  });

  /** A repository's claim as the contract asks: due rows, SKIP LOCKED, leased in the same statement. */
  const claimer = (db: Pool, leaseMs: number) => async (limit: number) => {
    const { rows } = await db.query<{ id: number }>(
      `UPDATE jobs SET next_check_at = now() + $2::float8 * interval '1 millisecond', attempts = attempts + 1
        WHERE id IN (SELECT id FROM jobs WHERE done_at IS NULL AND next_check_at <= now()
                      ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING id`,
      [limit, leaseMs],
    );
    return rows.map((r) => r.id);
  };
  const finish = (db: Pool, id: number) => db.query('UPDATE jobs SET done_at = now() WHERE id = $1', [id]);

  const loop = (o: {
    db: Pool;
    leaseMs: number;
    handle: (id: number) => Promise<void>;
    batch?: number;
    concurrency?: number;
    registry?: Registry;
  }) => {
    const l = createClaimLoop({
      name: 'test-jobs',
      claim: claimer(o.db, o.leaseMs),
      handle: o.handle,
      idOf: String,
      oldestDue: async () =>
        (
          await o.db.query<{ at: Date | null }>(
            'SELECT min(next_check_at) AS at FROM jobs WHERE done_at IS NULL AND next_check_at <= now()',
          )
        ).rows[0]!.at,
      intervalMs: 10,
      batch: o.batch ?? 4,
      concurrency: o.concurrency ?? 3,
      logger,
      metrics: { registry: o.registry ?? new Registry() },
    });
    loops.push(l);
    return l;
  };

  it('two replicas never work one row at once, and each row once under its own request id', async () => {
    const N = 60;
    await pools[0]!.query('INSERT INTO jobs (id) SELECT generate_series(1, $1::int)', [N]);
    const working = new Set<number>();
    const overlaps: number[] = [];
    const worked: Record<string, number[]> = { a: [], b: [] };
    const requestIds = new Set<string>();
    for (const name of ['a', 'b'] as const) {
      const db = pool();
      loop({
        db,
        leaseMs: 60_000,
        handle: async (id) => {
          if (working.has(id)) overlaps.push(id);
          working.add(id);
          requestIds.add(currentContext()!.requestId);
          // A few round trips, so the two replicas' handlers interleave.
          await db.query('SELECT $1::int', [id]);
          await finish(db, id);
          worked[name]!.push(id);
          working.delete(id);
        },
      }).start();
    }
    await waitFor(async () => worked.a!.length + worked.b!.length === N, {
      timeoutMs: 20_000,
      what: 'every row to be worked',
    });
    expect(overlaps).toEqual([]);
    expect([...worked.a!, ...worked.b!].sort((x, y) => x - y)).toEqual(
      Array.from({ length: N }, (_, i) => i + 1),
    );
    expect(worked.a!.length).toBeGreaterThan(0);
    expect(worked.b!.length).toBeGreaterThan(0);
    expect(requestIds.size).toBe(N);
    for (const id of requestIds) expect(id).toMatch(/^test-jobs-[0-9a-f-]{36}$/);
    const { rows } = await pools[0]!.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM jobs WHERE attempts <> 1',
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('retries a row whose handler threw once its lease ends, and counts the failure', async () => {
    await pools[0]!.query('INSERT INTO jobs (id) VALUES (1), (2)');
    const db = pool();
    const registry = new Registry();
    let failedOnce = false;
    loop({
      db,
      leaseMs: 200,
      registry,
      handle: async (id) => {
        if (id === 1 && !failedOnce) {
          failedOnce = true;
          throw new Error('Replicate said no');
        }
        await finish(db, id);
      },
    }).start();
    await waitFor(
      async () =>
        (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs WHERE done_at IS NOT NULL'))
          .rows[0]!.n === 2,
      { timeoutMs: 10_000, what: 'both rows to be done' },
    );
    const { rows } = await db.query('SELECT id, attempts FROM jobs ORDER BY id');
    expect(rows).toEqual([
      { id: 1, attempts: 2 },
      { id: 2, attempts: 1 },
    ]);
    const text = await registry.metrics();
    expect(text).toContain('atelier_claim_loop_items_total{loop="test-jobs",outcome="failed"} 1');
    expect(text).toContain('atelier_claim_loop_items_total{loop="test-jobs",outcome="ok"} 2');
    expect(text).toMatch(/atelier_claim_loop_oldest_due_seconds\{loop="test-jobs"\} [0-9.]+/);
  });

  it('stop() drains the rows being worked and leaves the unstarted ones to their lease', async () => {
    await pools[0]!.query('INSERT INTO jobs (id) VALUES (1), (2), (3)');
    const db = pool();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const entered: number[] = [];
    const l = loop({
      db,
      leaseMs: 60_000,
      batch: 3,
      concurrency: 1,
      handle: async (id) => {
        entered.push(id);
        await gate;
        await finish(db, id);
      },
    });
    l.start();
    await waitFor(() => entered.length === 1, { what: 'the first row to be in hand' });
    let stopped = false;
    const stopping = l.stop().then(() => (stopped = true));
    // A database round trip gives stop() every chance to resolve early if it does not wait.
    await db.query('SELECT 1');
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(entered).toHaveLength(1);
    const { rows } = await db.query(
      'SELECT count(*) FILTER (WHERE done_at IS NOT NULL)::int AS done, count(*) FILTER (WHERE attempts = 1)::int AS claimed FROM jobs',
    );
    // The one in hand finished; the other two stay claimed, due again when their lease ends.
    expect(rows[0]).toEqual({ done: 1, claimed: 3 });
  });
});
