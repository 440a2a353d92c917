// The api benchmark's baseline: one Express process answering GET /api/v1/versions/info/{id} with
// the same SQL the mesh runs (billing's API-key lookup, cached for AUTH_CACHE_MS as the gateway
// caches it; trainer's version SELECT; billing's balance SELECT) and the same JSON — and nothing
// else: no gRPC hops, no Redis rate limiter, no request log, no metrics.
import { createHash } from 'node:crypto';
import http from 'node:http';
import { require } from './common.mjs';

const express = require('express');
const { Pool } = require('pg');

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
pool.on('error', () => undefined);
const AUTH_CACHE_MS = Number(process.env.AUTH_CACHE_MS ?? 5000);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// services/trainer/src/repositories/version.repository.ts, find()
const VERSION_COLUMNS = [
  'id',
  'account_id',
  'payment_id',
  'status',
  'class_name',
  'trigger_word',
  'model',
  'replicate_training_id',
  'replicate_version',
  'dataset_key',
  'image_count',
  'error',
  'created_at',
  'started_at',
  'completed_at',
  'pushed_at',
  'predict_time',
  'cost_micros',
  'next_check_at',
  'deadline_at',
  'grant_settled_at',
  'usage_recorded_at',
  'settled_at',
]
  .map((n) => (n === 'cost_micros' ? 'cost_micros::float8 AS cost_micros' : n))
  .join(', ');
const VERSION_SQL = `SELECT ${VERSION_COLUMNS} FROM trainer.versions WHERE id = $1`;
// services/billing/src/repositories/credit-balance.repository.ts, find()
const BALANCE_SQL =
  'SELECT version_id, account_id, granted, used FROM billing.credit_balances WHERE version_id = $1';
// services/billing/src/repositories/api-key.repository.ts, findActiveByHash()
const KEY_SQL = 'SELECT account_id, prefix FROM billing.api_keys WHERE key_hash = $1 AND revoked_at IS NULL';

const cache = new Map();
async function accountOf(req) {
  const match = /^Bearer ([\x21-\x7e]{1,200})$/i.exec(req.get('authorization') ?? '');
  if (!match) return undefined;
  const hash = createHash('sha256').update(match[1]).digest();
  const cacheKey = hash.toString('base64');
  const hit = cache.get(cacheKey);
  if (hit && hit.until > Date.now()) return hit.accountId;
  const { rows } = await pool.query(KEY_SQL, [hash]);
  if (!rows[0]) return undefined;
  cache.set(cacheKey, { accountId: rows[0].account_id, until: Date.now() + AUTH_CACHE_MS });
  return rows[0].account_id;
}

const iso = (d) => (d ? d.toISOString() : null);
const problem = (res, status, title) =>
  res
    .status(status)
    .type('application/problem+json')
    .send(JSON.stringify({ type: 'about:blank', title, status }));

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
app.get('/api/v1/versions/info/:version_id', async (req, res) => {
  try {
    const accountId = await accountOf(req);
    if (!accountId) return problem(res, 401, 'Unauthorized');
    const id = req.params.version_id;
    if (!UUID.test(id)) return problem(res, 400, 'Malformed id');
    const [version, balance] = await Promise.all([
      pool.query(VERSION_SQL, [id]),
      pool.query(BALANCE_SQL, [id]),
    ]);
    const v = version.rows[0];
    const b = balance.rows[0];
    if (!v || v.account_id !== accountId || (b && b.account_id !== accountId))
      return problem(res, 404, 'Not Found');
    const trainingSeconds =
      v.predict_time !== null
        ? v.predict_time
        : v.started_at && v.completed_at
          ? Math.max(0, (v.completed_at - v.started_at) / 1000)
          : null;
    res
      .status(200)
      .type('application/json')
      .send(
        JSON.stringify({
          version_id: v.id,
          status: v.status,
          is_ready: v.status === 'succeeded' && v.pushed_at !== null,
          class: v.class_name,
          trigger_word: v.trigger_word,
          model: v.model,
          created_at: iso(v.created_at),
          started_at: iso(v.started_at),
          completed_at: iso(v.completed_at),
          pushed_at: iso(v.pushed_at),
          training_seconds: trainingSeconds,
          error: v.error || null,
          images: { granted: b?.granted ?? 0, used: b?.used ?? 0, remaining: b ? b.granted - b.used : 0 },
        }),
      );
  } catch {
    problem(res, 500, 'Internal Server Error');
  }
});

const server = http.createServer(app);
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.BASELINE_PORT), '127.0.0.1');
const stop = () => {
  server.closeAllConnections();
  server.close(() => pool.end().finally(() => process.exit(0)));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
