// api: GET /api/v1/versions/info/{id} through the mesh (gateway → trainer and billing over gRPC →
// Postgres, plus the gateway's Redis rate limiter) under autocannon load, against one Express
// process answering the same route with the same SQL (bench/lib/api-baseline.mjs), in the same run.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { CACHE_DIR, cpuDelta, cpuSnapshot, log, require, round, sleep, waitFor } from './lib/common.mjs';
import { newestProfile, printProfile, summariseProfile } from './lib/profile.mjs';
import { api, createAccount, startStack } from './lib/stack.mjs';

const autocannon = require('autocannon');
const { freePort } = require('./infra/dist/stack/ports.js');

const CONNECTIONS = Number(process.env.BENCH_API_CONNECTIONS ?? 32);
const WARMUP_S = Number(process.env.BENCH_API_WARMUP_S ?? 5);
const DURATION_S = Number(process.env.BENCH_API_DURATION_S ?? 10);
const ROUNDS = Number(process.env.BENCH_API_ROUNDS ?? 2);
const PROFILE = process.env.BENCH_PROFILE; // '1' always, '0' never, unset: when a target is missed

export const target = { throughput_ratio_min: 0.6, p99_ratio_max: 2 };

function load(url, headers, seconds) {
  return new Promise((resolve, reject) => {
    autocannon({ url, headers, connections: CONNECTIONS, duration: seconds, pipelining: 1 }, (err, result) =>
      err ? reject(err) : resolve(result),
    );
  });
}

export async function run() {
  const stack = await startStack({
    name: 'api',
    // The limiter still runs on every request (one Redis script each); only its limit is out of reach.
    env: { RATE_LIMIT_PER_WINDOW: '1000000000', LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' },
  });
  const db = await stack.db();
  try {
    const { accountId, apiKey } = await createAccount(stack);
    const versionId = randomUUID();
    // A ready version with credits; settled, so trainer's reconciler never looks at it.
    await db.query(
      `INSERT INTO trainer.versions (id, account_id, payment_id, status, class_name, trigger_word, model, replicate_training_id,
                                     replicate_version, dataset_key, image_count, started_at, completed_at, pushed_at, predict_time,
                                     next_check_at, deadline_at, grant_settled_at, usage_recorded_at, settled_at)
       VALUES ($1, $2, $3, 'succeeded', 'dog', 'TOK', 'atelier/v-bench', 'r8_training_bench', 'abc123', 'datasets/bench.zip', 12,
               now() - interval '20 minutes', now() - interval '5 minutes', now() - interval '4 minutes', 873.5,
               now() + interval '1 day', now() + interval '1 day', now(), now(), now())`,
      [versionId, accountId, randomUUID()],
    );
    await db.query(
      'INSERT INTO billing.credit_balances (version_id, account_id, granted, used) VALUES ($1, $2, 100, 7)',
      [versionId, accountId],
    );

    const baselinePort = await freePort();
    await stack.call('spawnNode', {
      name: 'baseline',
      script: 'bench/lib/api-baseline.mjs',
      env: { BASELINE_PORT: String(baselinePort) },
    });
    const baselineUrl = `http://127.0.0.1:${baselinePort}`;
    await waitFor(() => fetch(`${baselineUrl}/healthz`).then((r) => r.ok), { what: 'the baseline server' });

    const route = `/api/v1/versions/info/${versionId}`;
    const headers = { authorization: `Bearer ${apiKey}` };
    const urls = { baseline: `${baselineUrl}${route}`, mesh: `${stack.info.gatewayUrl}${route}` };
    // Same answer from both, or the comparison means nothing.
    const meshBody = await (await api(stack, route, { key: apiKey })).json();
    const baseBody = await (await fetch(urls.baseline, { headers })).json();
    if (JSON.stringify(meshBody) !== JSON.stringify(baseBody)) {
      throw new Error(
        `the baseline answers differently:\nmesh     ${JSON.stringify(meshBody)}\nbaseline ${JSON.stringify(baseBody)}`,
      );
    }

    const pids = await stack.pids();
    const processes = {
      gateway: { pid: pids.gateway },
      trainer: { pid: pids.trainer },
      billing: { pid: pids.billing },
      baseline: { pid: pids.baseline },
      postgres: { pid: stack.info.postgresPid, tree: true },
      redis: { pid: stack.info.redisPid },
    };
    const cpu = () =>
      Object.fromEntries(
        Object.entries(processes).map(([n, p]) => [n, cpuSnapshot(p.pid, { tree: p.tree })]),
      );

    log(
      `api: warm-up ${WARMUP_S} s each, then ${ROUNDS} round(s) of ${DURATION_S} s per target, ${CONNECTIONS} connections`,
    );
    for (const which of ['baseline', 'mesh']) await load(urls[which], headers, WARMUP_S);
    const runs = { baseline: [], mesh: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const which of ['baseline', 'mesh']) {
        await sleep(500);
        const before = cpu();
        const self0 = process.cpuUsage();
        const r = await load(urls[which], headers, DURATION_S);
        const after = cpu();
        const selfCpu = process.cpuUsage(self0);
        const ok = r['2xx'];
        if (r.non2xx || r.errors || r.timeouts) {
          throw new Error(
            `${which}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts (status ${JSON.stringify(r.statusCodeStats)})`,
          );
        }
        const cpuMsPerKReq = Object.fromEntries(
          Object.keys(processes).map((n) => [n, round2((1e6 * cpuDelta(before[n], after[n])) / ok)]),
        );
        cpuMsPerKReq.autocannon = round2((selfCpu.user + selfCpu.system) / ok); // µs per request = ms per 1000
        runs[which].push({
          rps: ok / r.duration,
          p50: r.latency.p50,
          p99: r.latency.p99,
          mean: r.latency.average,
          requests: ok,
          cpu_ms_per_1000_requests: cpuMsPerKReq,
        });
        log(
          `api: ${which} round ${round + 1}: ${Math.round(ok / r.duration)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`,
        );
      }
    }
    const summary = (list) => ({
      rps: round(list.reduce((a, r) => a + r.rps, 0) / list.length, 0),
      p50_ms: round(list.reduce((a, r) => a + r.p50, 0) / list.length, 1),
      p99_ms: round(list.reduce((a, r) => a + r.p99, 0) / list.length, 1),
      cpu_ms_per_1000_requests: Object.fromEntries(
        Object.keys(list[0].cpu_ms_per_1000_requests).map((n) => [
          n,
          round(list.reduce((a, r) => a + r.cpu_ms_per_1000_requests[n], 0) / list.length, 0),
        ]),
      ),
    });
    const mesh = summary(runs.mesh);
    const baseline = summary(runs.baseline);
    const ratio = {
      throughput: round(mesh.rps / baseline.rps, 2),
      p50: round(mesh.p50_ms / baseline.p50_ms, 2),
      p99: round(mesh.p99_ms / baseline.p99_ms, 2),
    };
    const met = ratio.throughput >= target.throughput_ratio_min && ratio.p99 <= target.p99_ratio_max;

    let profiles;
    if (PROFILE === '1' || (PROFILE !== '0' && !met)) profiles = await profileMesh(stack, urls, headers);

    const busy = (s) =>
      Object.entries(s.cpu_ms_per_1000_requests)
        .filter(([n, v]) => v > 0 && n !== 'baseline')
        .map(([n, v]) => `${n} ${v}`)
        .join(', ');
    return {
      figures: { mesh, rounds: runs, connections: CONNECTIONS, duration_s: DURATION_S, warmup_s: WARMUP_S },
      baseline,
      ratio,
      target,
      met,
      profiles,
      table: [
        {
          figure: 'req/s',
          value: mesh.rps,
          baseline: baseline.rps,
          ratio: ratio.throughput,
          target: `≥ ${target.throughput_ratio_min}`,
          met: ratio.throughput >= target.throughput_ratio_min,
        },
        {
          figure: 'p50 ms',
          value: mesh.p50_ms,
          baseline: baseline.p50_ms,
          ratio: ratio.p50,
          target: '',
          met: '',
        },
        {
          figure: 'p99 ms',
          value: mesh.p99_ms,
          baseline: baseline.p99_ms,
          ratio: ratio.p99,
          target: `≤ ${target.p99_ratio_max}`,
          met: ratio.p99 <= target.p99_ratio_max,
        },
      ],
      notes: [
        `CPU ms per 1000 requests, mesh run: ${busy(mesh)}`,
        `CPU ms per 1000 requests, baseline run: baseline ${baseline.cpu_ms_per_1000_requests.baseline}, postgres ${baseline.cpu_ms_per_1000_requests.postgres}, autocannon ${baseline.cpu_ms_per_1000_requests.autocannon}`,
      ],
    };
  } finally {
    await db.end().catch(() => undefined);
    await stack.stop();
  }
}

const round2 = (x) => Math.round(x * 100) / 100;

/** Restarts gateway, trainer, billing and the baseline with --cpu-prof, loads each for a while,
 * stops them (the profile is written on exit) and summarises where their CPU went. */
async function profileMesh(stack, urls, headers) {
  const dir = path.join(CACHE_DIR, 'profiles', 'api');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const names = ['gateway', 'trainer', 'billing'];
  log('api: profiling the mesh (node --cpu-prof on gateway, trainer, billing) and the baseline');
  for (const name of names) {
    fs.mkdirSync(path.join(dir, name));
    await stack.call('restart', { name, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, name)}`] });
  }
  await stack.call('waitReady', { gatewayUrl: stack.info.gatewayUrl });
  fs.mkdirSync(path.join(dir, 'baseline'));
  await stack.call('restart', {
    name: 'baseline',
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'baseline')}`],
  });
  await waitFor(() => fetch(urls.baseline.replace(/\/api\/.*/, '/healthz')).then((r) => r.ok), {
    what: 'the baseline server',
  });

  const hr = () => Number(process.hrtime.bigint() / 1000n);
  const windows = {};
  await load(urls.mesh, headers, 3);
  windows.mesh = { fromUs: hr() };
  const meshRun = await load(urls.mesh, headers, DURATION_S);
  windows.mesh.toUs = hr();
  await load(urls.baseline, headers, 3);
  windows.baseline = { fromUs: hr() };
  const baseRun = await load(urls.baseline, headers, DURATION_S);
  windows.baseline.toUs = hr();
  for (const name of [...names, 'baseline']) await stack.call('stopChild', { name });

  const out = {
    under_profiler: {
      mesh_rps: round(meshRun['2xx'] / meshRun.duration, 0),
      baseline_rps: round(baseRun['2xx'] / baseRun.duration, 0),
    },
  };
  for (const name of [...names, 'baseline']) {
    const file = newestProfile(path.join(dir, name));
    if (file)
      out[name] = summariseProfile(file, {
        top: 25,
        window: name === 'baseline' ? windows.baseline : windows.mesh,
      });
  }
  return out;
}

export function report(result) {
  if (!result.profiles) return;
  console.log(
    `\n  api profiles (node --cpu-prof, ${DURATION_S} s of load each; under the profiler: mesh ${result.profiles.under_profiler.mesh_rps} req/s, baseline ${result.profiles.under_profiler.baseline_rps} req/s)`,
  );
  for (const name of ['gateway', 'trainer', 'billing', 'baseline'])
    if (result.profiles[name]) printProfile(name, result.profiles[name]);
}
