/**
 * `/sandbox/*`: the test-control surface for another process (the dev stack, an end-to-end test)
 * — the same fault API as the in-process object, plus read access to what the sandbox recorded.
 *
 * POST /sandbox/faults body, every key optional, applied in this order:
 *   { "clear": true,
 *     "failRuns": {count?, kind?: "training"|"prediction", error?} | [...],
 *     "failApi": {count?, status?: 429|500|502|503, retryAfterSeconds?, method?, path? (prefix),
 *                 pathPattern? (regular expression)} | [...],
 *     "dropWebhooks": true (all until cleared) | N,
 *     "expireOutputs": true (every run) | "<run id>" }
 */
import type { Core } from './core';
import { Problems } from './errors';
import type { ApiFault, FaultStatus, RunFault } from './faults';
import { isObject } from './inputs';
import { Router, type Reply } from './http';

const ok = (body: unknown): Reply => ({ status: 200, body });

export function adminRoutes(core: Core): Router {
  return new Router()
    .on('GET', '/sandbox/health', () => ok({ ok: true }))
    .on('GET', '/sandbox/faults', () => ok(core.faults.snapshot()))
    .on('POST', '/sandbox/faults', ({ body }) => {
      applyFaults(core, body);
      return ok(core.faults.snapshot());
    })
    .on('DELETE', '/sandbox/faults', () => {
      core.faults.clear();
      return ok(core.faults.snapshot());
    })
    .on('GET', '/sandbox/deliveries', () => ok(core.webhooks.list()))
    .on('GET', '/sandbox/calls', () => ok(core.calls))
    .on('GET', '/sandbox/runs/:id', ({ params }) => {
      const record = core.record(params.id!);
      if (!record) throw Problems.notFound();
      return ok(record);
    })
    .on('POST', '/sandbox/runs/:id/complete', async ({ params, body }) => {
      const b = isObject(body) ? body : {};
      const status = b.status === 'failed' || b.status === 'succeeded' ? b.status : undefined;
      return ok(
        await core.complete(params.id!, { status, error: typeof b.error === 'string' ? b.error : undefined }),
      );
    });
}

function applyFaults(core: Core, body: unknown): void {
  if (!isObject(body)) throw Problems.invalid([{ field: '(root)', description: 'Expected a JSON object' }]);
  if (body.clear === true) core.faults.clear();
  for (const f of list(body.failRuns)) core.faults.failNextRuns(runFault(f));
  for (const f of list(body.failApi)) core.faults.failNextApiCalls(apiFault(f));
  if (body.dropWebhooks === true) core.faults.dropWebhooks();
  else if (typeof body.dropWebhooks === 'number') core.faults.dropWebhooks(body.dropWebhooks);
  if (body.expireOutputs === true) core.faults.expireOutputs();
  else if (typeof body.expireOutputs === 'string') core.faults.expireOutputs(body.expireOutputs);
}

function list(v: unknown): Record<string, unknown>[] {
  if (v === undefined) return [];
  const items = Array.isArray(v) ? v : [v];
  if (!items.every(isObject))
    throw Problems.invalid([{ field: '(root)', description: 'Faults must be objects' }]);
  return items;
}

function count(f: Record<string, unknown>): number | undefined {
  return typeof f.count === 'number' && f.count >= 0 ? f.count : undefined;
}

function runFault(f: Record<string, unknown>): RunFault {
  return {
    count: count(f),
    kind: f.kind === 'training' || f.kind === 'prediction' ? f.kind : undefined,
    error: typeof f.error === 'string' ? f.error : undefined,
  };
}

function apiFault(f: Record<string, unknown>): ApiFault {
  const status = [429, 500, 502, 503].includes(f.status as number) ? (f.status as FaultStatus) : undefined;
  if (f.status !== undefined && status === undefined) {
    throw Problems.invalid([{ field: 'failApi.status', description: 'Must be one of: 429, 500, 502, 503' }]);
  }
  return {
    count: count(f),
    status,
    retryAfterSeconds: typeof f.retryAfterSeconds === 'number' ? f.retryAfterSeconds : undefined,
    method: typeof f.method === 'string' ? f.method : undefined,
    path:
      typeof f.pathPattern === 'string'
        ? pattern(f.pathPattern)
        : typeof f.path === 'string'
          ? f.path
          : undefined,
  };
}

function pattern(source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw Problems.invalid([{ field: 'failApi.pathPattern', description: (err as Error).message }]);
  }
}
