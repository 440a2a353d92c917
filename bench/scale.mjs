// scale: (1) GET /api/v1/prompts/list/{version_id} with 100, 10 000 and 100 000 prompts on one
// version — first page and a page deep in the list, through the gateway and as the SQL statement
// alone, with its EXPLAIN; (2) trainer's reconciler with 10 000 versions in flight: its claim
// statement and whole passes, per claimed row.
//
// Rows are written in bulk with generate_series. The statements measured are the repositories' own:
// they are captured by calling the compiled repository methods on a recording connection.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  log,
  logEntries,
  median,
  now,
  percentile,
  require,
  round,
  timeRuns,
  waitFor,
} from './lib/common.mjs';
import { api, createAccount, startStack } from './lib/stack.mjs';

const { PromptRepository } = require('./services/inferencer/dist/repositories/prompt.repository.js');
const { VersionRepository } = require('./services/trainer/dist/repositories/version.repository.js');
const { trainerRepositories } = require('./services/trainer/dist/repositories/index.js');
const { createVersionReconciler } = require('./services/trainer/dist/domain/version.job.js');
const { VersionTransitions } = require('./services/trainer/dist/domain/version-transition.service.js');
const { trainerConfigSchema } = require('./services/trainer/dist/config.js');
const { createHealthChecker, createLogger, createMetrics, createPool, createStore } = require('@atelier/kit');

const SIZES = (process.env.BENCH_SCALE_SIZES ?? '100,10000,100000').split(',').map(Number);
const IN_FLIGHT = Number(process.env.BENCH_SCALE_VERSIONS ?? 10_000);
const PAGE = 20; // the route's default limit
const REQUESTS = Number(process.env.BENCH_SCALE_REQUESTS ?? 40);
const PASSES = Number(process.env.BENCH_SCALE_PASSES ?? 40);
export const target = {
  page_time_ratio_max: 1.5,
  // issue 20: a page through the mesh within 3× the time of its own SQL statement
  page_to_sql_ratio_max: 3,
  listing_index: 'prompts_listing_idx',
  claim_index: 'versions_due_idx',
};

/** The SQL text and parameters a repository method sends. */
async function captured(call) {
  let statement;
  const recorder = {
    async query(text, values) {
      statement ??= { text, values };
      return { rows: [], rowCount: 0 };
    },
  };
  await call(recorder);
  return statement;
}

async function explain(db, { text, values }, { rollback = false } = {}) {
  if (rollback) await db.query('BEGIN');
  try {
    const { rows } = await db.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) ${text}`, values);
    const plan = rows.map((r) => r['QUERY PLAN']);
    const execution = Number(/Execution Time: ([\d.]+)/.exec(plan.join('\n'))?.[1]);
    return { plan, execution_ms: execution };
  } finally {
    if (rollback) await db.query('ROLLBACK');
  }
}

const usesIndex = (plan, index) => plan.some((l) => l.includes(`using ${index}`));

export async function run() {
  const cfg = trainerConfigSchema.parse({
    DATABASE_URL: 'postgres://x/y',
    REDIS_URL: 'redis://x',
    BILLING_ADDR: 'x',
    IMAGER_ADDR: 'x',
    INFERENCER_ADDR: 'x',
    REPLICATE_API_TOKEN: 'x',
    PUBLIC_WEBHOOK_URL: 'http://x/',
  });
  const stack = await startStack({
    name: 'scale',
    // Trainer's own reconciler stays out of the way of the one measured here.
    env: {
      RATE_LIMIT_PER_WINDOW: '1000000',
      LOG_LEVEL: 'info',
      RECONCILE_INTERVAL_MS: '3600000',
      PREDICTION_CHECK_INTERVAL_MS: '3600000',
    },
  });
  const db = await stack.db();
  try {
    const account = await createAccount(stack);
    const versionId = randomUUID();
    await db.query(
      `INSERT INTO trainer.versions (id, account_id, payment_id, status, class_name, trigger_word, model, replicate_training_id, replicate_version,
                                     dataset_key, image_count, started_at, completed_at, pushed_at, next_check_at, deadline_at,
                                     grant_settled_at, usage_recorded_at, settled_at)
       VALUES ($1, $2, $3, 'succeeded', 'dog', 'TOK', 'atelier/v-bench', 'bench_listing', 'abc', 'datasets/bench.zip', 5, now(), now(), now(),
               now() + interval '1 day', now() + interval '1 day', now(), now(), now())`,
      [versionId, account.accountId, randomUUID()],
    );

    // ---- listing ----------------------------------------------------------------------------
    const listing = [];
    let have = 0;
    for (const n of SIZES) {
      const t = now();
      await db.query(
        `WITH p AS (
           INSERT INTO inferencer.prompts (id, account_id, version_id, status, prompt, params, num_outputs, replicate_prediction_id,
                                           created_at, started_at, completed_at, predict_time, cost_micros, next_check_at, deadline_at)
           SELECT gen_random_uuid(), $1, $2, 'succeeded', 'a photo of TOK dog, number ' || g,
                  '{"num_outputs":4,"width":1024,"height":1024,"num_inference_steps":28,"guidance_scale":3.5,"seed":42}', 4,
                  'bench_prediction_' || g, now() - g * interval '1 second', now() - g * interval '1 second',
                  now() - g * interval '1 second' + interval '3 seconds', 2.5, 3500, now() + interval '1 day', now() + interval '1 day'
             FROM generate_series($3::int, $4::int) g
           RETURNING id, account_id, version_id)
         INSERT INTO inferencer.prompt_images (prompt_id, position, key, width, height, content_type, bytes)
         SELECT p.id, k, 'outputs/' || p.account_id || '/' || p.version_id || '/' || p.id || '/' || k || '.png', 1024, 1024, 'image/png', 1400000
           FROM p CROSS JOIN generate_series(0, 3) k`,
        [account.accountId, versionId, have + 1, n],
      );
      have = n;
      await db.query('ANALYZE inferencer.prompts; ANALYZE inferencer.prompt_images');
      const insertMs = now() - t;

      // A cursor in the middle of the list, as the service encodes it.
      const { rows: mid } = await db.query(
        `SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key
           FROM inferencer.prompts WHERE version_id = $1 AND status = 'succeeded' ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1`,
        [versionId, Math.floor(n / 2)],
      );
      const cursor = Buffer.from(JSON.stringify([mid[0].created_key, mid[0].id])).toString('base64url');

      const route = `/api/v1/prompts/list/${versionId}?limit=${PAGE}`;
      const requestIds = [];
      const page = async (c) => {
        const id = randomUUID();
        requestIds.push(id);
        const res = await api(stack, c ? `${route}&cursor=${c}` : route, {
          key: account.apiKey,
          headers: { 'x-request-id': id },
        });
        if (res.status !== 200) throw new Error(`listing answered ${res.status}: ${await res.text()}`);
        const body = await res.json();
        if (
          body.prompts.length !== Math.min(PAGE, c ? n - Math.floor(n / 2) - 1 : n) ||
          body.prompts[0].images.length !== 4
        ) {
          throw new Error(`unexpected page: ${body.prompts.length} prompts`);
        }
      };
      const first = await timeRuns(() => page(), { runs: REQUESTS, warmup: 15 });
      const firstIds = requestIds.slice(-REQUESTS);
      const deep = await timeRuns(() => page(cursor), { runs: REQUESTS, warmup: 15 });
      const hopsFirst = await hops(stack.info.logDir, firstIds);

      const repo = (conn) => new PromptRepository(conn);
      const sqlFirst = await captured((c) =>
        repo(c).listSucceeded(account.accountId, versionId, undefined, PAGE + 1),
      );
      const sqlDeep = await captured((c) =>
        repo(c).listSucceeded(
          account.accountId,
          versionId,
          { createdKey: mid[0].created_key, id: mid[0].id },
          PAGE + 1,
        ),
      );
      const sqlTimes = await timeRuns(() => db.query(sqlFirst.text, sqlFirst.values), {
        runs: REQUESTS,
        warmup: 15,
      });
      const sqlDeepTimes = await timeRuns(() => db.query(sqlDeep.text, sqlDeep.values), {
        runs: REQUESTS,
        warmup: 15,
      });
      const planFirst = await explain(db, sqlFirst);
      const planDeep = await explain(db, sqlDeep);
      const row = {
        prompts: n,
        images: n * 4,
        insert_ms: round(insertMs, 0),
        first_page_p50_ms: round(median(first), 1),
        first_page_p95_ms: round(percentile(first, 95), 1),
        deep_page_p50_ms: round(median(deep), 1),
        deep_page_p95_ms: round(percentile(deep, 95), 1),
        sql_first_p50_ms: round(median(sqlTimes), 2),
        sql_deep_p50_ms: round(median(sqlDeepTimes), 2),
        explain_first_ms: planFirst.execution_ms,
        explain_deep_ms: planDeep.execution_ms,
        index_first: usesIndex(planFirst.plan, target.listing_index),
        index_deep: usesIndex(planDeep.plan, target.listing_index),
        first_page_hops_p50_ms: hopsFirst,
        plan_first: planFirst.plan,
        plan_deep: planDeep.plan,
      };
      listing.push(row);
      log(
        `scale: ${n} prompts: first page ${row.first_page_p50_ms} ms, deep page ${row.deep_page_p50_ms} ms (SQL ${row.sql_first_p50_ms} / ${row.sql_deep_p50_ms} ms), index ${row.index_first}/${row.index_deep}`,
      );
    }

    // ---- the floor of any page on this machine ------------------------------------------------
    // A page is one HTTP request and two gRPC round trips around its SQL: what those cost with no
    // work behind them (an empty route, a health check) is the least a page can take here.
    const healthz = await timeRuns(() => fetch(`${stack.info.gatewayUrl}/healthz`).then((r) => r.text()), {
      runs: REQUESTS * 5,
      warmup: 15,
    });
    const health = createHealthChecker(stack.info.env.INFERENCER_ADDR);
    const grpcCheck = await timeRuns(() => health.check(), { runs: REQUESTS * 5, warmup: 15 });
    health.close();
    const floor = {
      http_healthz_p50_ms: round(median(healthz), 2),
      grpc_health_check_p50_ms: round(median(grpcCheck), 2),
    };
    floor.page_floor_ms = round(floor.http_healthz_p50_ms + 2 * floor.grpc_health_check_p50_ms, 2);

    // ---- reconciler -------------------------------------------------------------------------
    const t = now();
    await db.query(
      `INSERT INTO trainer.versions (id, account_id, payment_id, status, class_name, trigger_word, model, replicate_training_id,
                                     dataset_key, image_count, started_at, created_at, next_check_at, deadline_at, grant_settled_at)
       SELECT gen_random_uuid(), $1, gen_random_uuid(), 'processing', 'dog', 'TOK', 'atelier/v-' || g, 'bench_training_' || g,
              'datasets/bench.zip', 12, now() - interval '10 minutes', now() - interval '10 minutes',
              now() - (g % 600) * interval '1 second', now() + interval '2 hours', now()
         FROM generate_series(1, $2::int) g`,
      [account.accountId, IN_FLIGHT],
    );
    await db.query('ANALYZE trainer.versions');
    const seedMs = now() - t;
    const batch = cfg.RECONCILE_BATCH;
    const claim = await captured((c) =>
      new VersionRepository(c).claimDue(batch, cfg.RECONCILE_INTERVAL_MS, cfg.RECONCILE_MAX_BACKOFF_MS),
    );
    const count = await captured((c) => new VersionRepository(c).countInFlight());
    const claimPlan = await explain(db, claim, { rollback: true });
    const countPlan = await explain(db, count);

    // The claim statement alone, until every version has been claimed once.
    const claimTimes = [];
    let claimed = 0;
    while (claimed < IN_FLIGHT) {
      const t0 = now();
      const { rowCount } = await db.query(claim.text, claim.values);
      claimTimes.push(now() - t0);
      if (!rowCount) break;
      claimed += rowCount;
    }

    // Whole passes of trainer's reconciler (its repositories on a real pool, its transitions),
    // with Replicate answering at once that each training is still processing: our cost per row.
    await db.query(
      "UPDATE trainer.versions SET next_check_at = now() - (random() * interval '10 minutes') WHERE replicate_training_id LIKE 'bench_training_%'",
    );
    const pool = createPool(stack.info.databaseUrl);
    const store = createStore(pool, trainerRepositories);
    const metrics = createMetrics('bench-trainer');
    const logger = createLogger('bench-trainer', 'silent');
    const replicate = {
      async getTraining(id) {
        return { id, status: 'processing', startedAt: new Date(Date.now() - 600_000) };
      },
      async cancelTraining(id) {
        return { id, status: 'canceled' };
      },
      async latestVersion() {
        return null;
      },
    };
    const billing = {
      async reportOutcome() {
        return { keepTraining: true };
      },
      async recordUsage() {},
      async releaseInitPayment() {
        return true;
      },
      async claimInitPayment() {},
    };
    const transitions = new VersionTransitions({
      store,
      billing,
      replicate,
      metrics: metrics.business,
      logger,
      pricePerSecondMicros: 1220,
      pushPatienceMs: cfg.TRAINING_TIMEOUT_MS,
    });
    const reconciler = createVersionReconciler(
      { store, billing, replicate, transitions, metrics, logger },
      {
        intervalMs: cfg.RECONCILE_INTERVAL_MS,
        maxGapMs: cfg.RECONCILE_MAX_BACKOFF_MS,
        batch,
        concurrency: cfg.RECONCILE_CONCURRENCY,
        timeoutMs: cfg.TRAINING_TIMEOUT_MS,
        startGraceMs: cfg.START_GRACE_MS,
      },
    );
    const passTimes = [];
    let passRows = 0;
    try {
      await reconciler.runOnce(); // warm-up: connections, JIT
      for (let i = 0; i < PASSES; i++) {
        const t0 = now();
        passRows += await reconciler.runOnce();
        passTimes.push(now() - t0);
      }
    } finally {
      await pool.end();
    }

    const claimPerRow = median(claimTimes) / batch;
    const passPerRow = passTimes.reduce((a, b) => a + b, 0) / passRows;
    const smallest = listing[0];
    const largest = listing.at(-1);
    const worstPage = Math.max(
      largest.first_page_p50_ms / smallest.first_page_p50_ms,
      largest.deep_page_p50_ms / smallest.deep_page_p50_ms,
    );
    const indexed = listing.every((r) => r.index_first && r.index_deep);
    const claimIndexed = usesIndex(claimPlan.plan, target.claim_index);
    const pageToSql = (r) =>
      Math.max(r.first_page_p50_ms / r.sql_first_p50_ms, r.deep_page_p50_ms / r.sql_deep_p50_ms);
    const worstPageToSql = Math.max(...listing.map(pageToSql));
    const met =
      worstPage <= target.page_time_ratio_max &&
      worstPageToSql <= target.page_to_sql_ratio_max &&
      indexed &&
      claimIndexed;

    const table = [];
    for (const r of listing) {
      table.push({
        figure: `list first page ms, ${r.prompts} prompts`,
        value: r.first_page_p50_ms,
        baseline: smallest.first_page_p50_ms,
        ratio: round(r.first_page_p50_ms / smallest.first_page_p50_ms, 2),
        target: `≤ ${target.page_time_ratio_max}`,
        met: r.first_page_p50_ms / smallest.first_page_p50_ms <= target.page_time_ratio_max,
      });
      table.push({
        figure: `list deep page ms, ${r.prompts} prompts`,
        value: r.deep_page_p50_ms,
        baseline: smallest.deep_page_p50_ms,
        ratio: round(r.deep_page_p50_ms / smallest.deep_page_p50_ms, 2),
        target: `≤ ${target.page_time_ratio_max}`,
        met: r.deep_page_p50_ms / smallest.deep_page_p50_ms <= target.page_time_ratio_max,
      });
      table.push({
        figure: `list page vs its SQL, ${r.prompts} prompts (worse of first/deep)`,
        value: Math.max(r.first_page_p50_ms, r.deep_page_p50_ms),
        baseline: Math.max(r.sql_first_p50_ms, r.sql_deep_p50_ms),
        ratio: round(pageToSql(r), 2),
        target: `≤ ${target.page_to_sql_ratio_max}`,
        met: pageToSql(r) <= target.page_to_sql_ratio_max,
      });
    }
    table.push({
      figure: 'listing uses prompts_listing_idx',
      value: indexed ? 'yes' : 'no',
      baseline: '',
      ratio: '',
      target: 'index',
      met: indexed,
    });
    table.push({
      figure: `claim ms per row (${IN_FLIGHT} in flight)`,
      value: round(claimPerRow, 3),
      baseline: '',
      ratio: '',
      target: 'index',
      met: claimIndexed,
    });
    table.push({
      figure: 'reconciler pass ms per row',
      value: round(passPerRow, 2),
      baseline: '',
      ratio: '',
      target: '',
      met: '',
    });

    return {
      figures: {
        listing: listing.map(({ plan_first, plan_deep, ...rest }) => rest),
        floor,
        reconciler: {
          versions_in_flight: IN_FLIGHT,
          seed_ms: round(seedMs, 0),
          batch,
          concurrency: cfg.RECONCILE_CONCURRENCY,
          claim_statement_p50_ms: round(median(claimTimes), 2),
          claim_statement_p95_ms: round(percentile(claimTimes, 95), 2),
          claims_until_drained: claimTimes.length,
          claim_ms_per_row: round(claimPerRow, 3),
          claim_explain_ms: claimPlan.execution_ms,
          count_in_flight_explain_ms: countPlan.execution_ms,
          passes: PASSES,
          pass_p50_ms: round(median(passTimes), 1),
          pass_ms_per_row: round(passPerRow, 2),
          rows_per_second: round(1000 / passPerRow, 0),
        },
      },
      baseline: {
        listing_at: `${smallest.prompts} prompts`,
        first_page_p50_ms: smallest.first_page_p50_ms,
        deep_page_p50_ms: smallest.deep_page_p50_ms,
      },
      ratio: {
        worst_page_time_largest_to_smallest: round(worstPage, 2),
        worst_page_to_its_sql: round(worstPageToSql, 2),
      },
      target,
      met,
      details: {
        explain: {
          listing_first_page: {
            sql: oneLine(
              listing.at(-1) &&
                (
                  await captured((c) =>
                    new PromptRepository(c).listSucceeded(account.accountId, versionId, undefined, PAGE + 1),
                  )
                ).text,
            ),
            plan: largest.plan_first,
          },
          listing_deep_page: { plan: largest.plan_deep },
          reconciler_claim: { sql: oneLine(claim.text), plan: claimPlan.plan },
          reconciler_count_in_flight: { sql: oneLine(count.text), plan: countPlan.plan },
        },
      },
      table,
      notes: [
        `listing: page of ${PAGE} prompts × 4 images through the gateway (auth, inferencer ListPrompts, imager SignUrls), p50 of ${REQUESTS} sequential requests; "deep" starts at a cursor half-way down the list`,
        ...listing.map(
          (r) =>
            `  ${String(r.prompts).padStart(6)} prompts: SQL alone first ${r.sql_first_p50_ms} ms, deep ${r.sql_deep_p50_ms} ms; EXPLAIN ANALYZE ${r.explain_first_ms} / ${r.explain_deep_ms} ms; prompts_listing_idx ${r.index_first ? 'used' : 'NOT used'} / ${r.index_deep ? 'used' : 'NOT used'}`,
        ),
        "first page, p50 of each part from the services' log lines (whole ms): gateway request = inferencer ListPrompts (SQL included) + imager SignUrls + the gateway's own work and two gRPC round trips",
        ...listing.map(
          ({ prompts, first_page_hops_p50_ms: h }) =>
            `  ${String(prompts).padStart(6)} prompts: ${h.gateway_request} = ${h.inferencer_list_prompts} + ${h.imager_sign_urls} + ${h.gateway_own_and_grpc}`,
        ),
        `the floor of a page here, before any work: GET /healthz ${floor.http_healthz_p50_ms} ms + 2 × a gRPC health check ${floor.grpc_health_check_p50_ms} ms = ${floor.page_floor_ms} ms, ${round(floor.page_floor_ms / largest.sql_first_p50_ms, 1)}× the SQL at ${largest.prompts} prompts before the SQL itself`,
        `EXPLAIN, first page at ${largest.prompts} prompts:`,
        ...largest.plan_first.slice(0, 8).map((l) => `    ${l}`),
        `EXPLAIN, deep page at ${largest.prompts} prompts:`,
        ...largest.plan_deep.slice(0, 8).map((l) => `    ${l}`),
        `reconciler: ${IN_FLIGHT} versions processing and due; claim of ${batch}: p50 ${round(median(claimTimes), 2)} ms (${round(claimPerRow, 3)} ms per row) over ${claimTimes.length} claims until all were claimed once`,
        `  whole passes (claim, ask Replicate — answered at once here —, transition, follow-up, in-flight count): p50 ${round(median(passTimes), 1)} ms per pass of ${batch}, ${round(passPerRow, 2)} ms per row, ~${round(1000 / passPerRow, 0)} rows/s at concurrency ${cfg.RECONCILE_CONCURRENCY}`,
        '  EXPLAIN of the claim:',
        ...claimPlan.plan.slice(0, 14).map((l) => `    ${l}`),
        `  in-flight count (once per pass): ${countPlan.execution_ms} ms — ${countPlan.plan[0]}`,
      ],
    };
  } finally {
    await db.end().catch(() => undefined);
    await stack.stop();
  }
}

const oneLine = (sql) => sql?.replace(/\s+/g, ' ').trim();

/**
 * Where a listing request's time goes, from the services' own log lines (whole milliseconds):
 * the gateway's request, inferencer's ListPrompts (its SQL included), imager's SignUrls, and the
 * rest — the gateway's own work (auth, rate limit, JSON) and the two gRPC round trips.
 */
async function hops(logDir, ids) {
  const want = new Set(ids);
  const durations = (file, pred) =>
    new Map(
      logEntries(path.join(logDir, file))
        .filter((j) => want.has(j.request_id) && pred(j))
        .map((j) => [j.request_id, j.duration_ms]),
    );
  // pino writes each line as it is logged, but the last request's may still be on its way.
  const gateway = await waitFor(
    () => {
      const found = durations('gateway.log', (j) => j.msg === 'http');
      return found.size === want.size ? found : undefined;
    },
    { what: "the listing requests' log lines" },
  );
  const list = durations('inferencer.log', (j) => j.method === 'ListPrompts');
  const sign = durations('imager.log', (j) => j.method === 'SignUrls');
  return {
    gateway_request: median([...gateway.values()]),
    inferencer_list_prompts: median([...list.values()]),
    imager_sign_urls: median([...sign.values()]),
    gateway_own_and_grpc: median(
      ids.map((id) => gateway.get(id) - (list.get(id) ?? 0) - (sign.get(id) ?? 0)),
    ),
  };
}
