/**
 * The metrics alerts and dashboards name exist because the code emits them: one end-to-end flow
 * through the test mesh (pay, train, prompt, a failed prompt, a throttled Replicate call, Replicate
 * down, forged webhooks, a refund, callbacks to the customer's endpoint, a model deleted while
 * Replicate refuses for a while), then a scrape of every process, saved to .atelier/scrape/e2e.prom. Every
 * metric and every label value an alert or a panel names must be in it, and the rule tests
 * (infra/prometheus/alerts.test.yml) must feed series shaped like it.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { startMesh, waitFor, distinctPhotos, photoForm, type Mesh } from '@atelier/infra/testing';
import {
  ROOT,
  SCRAPE_SERIES,
  TARGET_LABELS,
  alertRules,
  dashboardQueries,
  dashboards,
  isRealRegex,
  namedValues,
  parseExposition,
  parseSeriesSelector,
  promqlMatchers,
  promqlMetricNames,
  ruleTests,
  type Series,
} from '@atelier/infra/ops/promql';

const PROCESSES = ['gateway', 'billing', 'imager', 'trainer', 'inferencer'] as const;

/**
 * Label values alerts and rule tests name that a healthy test flow cannot produce, each with the
 * reason. Everything else must appear in the scrape.
 */
const UNREACHABLE: Record<string, string> = {
  'code=INTERNAL': 'a bug: the flow must not produce one',
  'code=UNKNOWN': 'a bug: the flow must not produce one',
  'code=DATA_LOSS': 'a bug: the flow must not produce one',
  'status=canceled': 'a canceled run; canceling is not part of the flow',
  'reason=timeout': 'the reconciler times a run out only after TRAINING_TIMEOUT_MS / PREDICTION_TIMEOUT_MS',
  'atelier_stripe_requests_total{outcome=error}':
    'Stripe failing; the Stripe sandbox has no faults to inject',
  'status=failed': 'a failed payment or training; the flow fails a prompt instead',
  'status=expired': 'an expired Checkout session',
};
const unreachable = (metric: string, label: string, value: string) =>
  UNREACHABLE[`${label}=${value}`] ?? UNREACHABLE[`${metric}{${label}=${value}}`];

/** Series no Atelier process exports: node-exporter's, and the backup job's (through its textfile collector). */
const external = (name: string) => /^node_|^atelier_backup_/.test(name);
/** Series recording rules of alerts.yml compute (level:metric:operations). */
const recorded = (name: string) => name.includes(':');

let mesh: Mesh;
let scrape: Series[];
/** The customer's server the account's webhook endpoint points at; it accepts every callback. */
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.end('ok'));
});
const SAVED = path.join(ROOT, '.atelier', 'scrape', 'e2e.prom');

async function scrapeAll(m: Mesh): Promise<{ text: string; series: Series[] }> {
  const targets: Record<(typeof PROCESSES)[number], string> = {
    gateway: `http://127.0.0.1:${m.gateway.metricsPort}/metrics`,
    billing: `http://127.0.0.1:${m.billing.metricsPort}/metrics`,
    imager: `http://127.0.0.1:${m.imager.metricsPort}/metrics`,
    trainer: `http://127.0.0.1:${m.trainer.metricsPort}/metrics`,
    inferencer: `http://127.0.0.1:${m.inferencer.metricsPort}/metrics`,
  };
  const parts: string[] = [];
  const series: Series[] = [];
  for (const job of PROCESSES) {
    const res = await fetch(targets[job]);
    if (res.status !== 200) throw new Error(`${targets[job]} answered ${res.status}`);
    const text = await res.text();
    const instance = new URL(targets[job]).host;
    // What Prometheus stores: the target's job and instance on every series, and `up`.
    const stored = [{ name: 'up', labels: {} }, ...parseExposition(text)].map((s) => ({
      name: s.name,
      labels: { ...s.labels, job, instance },
    }));
    series.push(...stored);
    parts.push(`# ---- job="${job}" instance="${instance}"\n${text}`);
  }
  return { text: parts.join('\n'), series };
}

const has = (series: Series[], name: string, label?: string, value?: string) =>
  series.some((s) => s.name === name && (label === undefined || s.labels[label] === value));

async function pay(m: Mesh, apiKey: string): Promise<{ paymentId: string; checkoutUrl: string }> {
  const created = await m.api('/api/v1/payments/create', {
    key: apiKey,
    method: 'POST',
    json: { plan_id: 'basic_init' },
  });
  expect(created.status).toBe(201);
  const payment = (await created.json()) as { payment_id: string; checkout_url: string };
  const paid = await fetch(payment.checkout_url, { method: 'POST', headers: { accept: 'application/json' } });
  expect(paid.status).toBe(200);
  await paymentStatus(m, apiKey, payment.payment_id, 'paid');
  return { paymentId: payment.payment_id, checkoutUrl: payment.checkout_url };
}

const paymentStatus = (m: Mesh, apiKey: string, paymentId: string, status: string) =>
  waitFor(
    async () =>
      ((await (await m.api(`/api/v1/payments/${paymentId}`, { key: apiKey })).json()) as { status: string })
        .status === status,
    { timeoutMs: 20_000, what: `payment ${paymentId} to be ${status}` },
  );

async function prompt(m: Mesh, apiKey: string, versionId: string): Promise<string> {
  const res = await m.api(`/api/v1/prompts/create/${versionId}`, {
    key: apiKey,
    method: 'POST',
    json: { prompt: 'a portrait of TOK', num_outputs: 1 },
  });
  expect(res.status).toBe(202);
  const { prompt_id } = (await res.json()) as { prompt_id: string };
  return waitFor(
    async () => {
      const p = (await (await m.api(`/api/v1/prompts/${prompt_id}`, { key: apiKey })).json()) as {
        status: string;
      };
      return ['succeeded', 'failed', 'canceled'].includes(p.status) && p.status;
    },
    { timeoutMs: 30_000, what: `prompt ${prompt_id} to finish` },
  );
}

beforeAll(async () => {
  mesh = await startMesh({
    replicate: { trainingMs: 300, predictionMs: 200 },
    env: {
      RATE_LIMIT_PER_WINDOW: '10000',
      RECONCILE_INTERVAL_MS: '200',
      DELETION_INTERVAL_MS: '200',
      DELETION_RETRY_BASE_MS: '100',
      DELETION_RETRY_MAX_MS: '100',
    },
  });
  const { apiKey } = await mesh.createAccount();
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const endpoint = await mesh.api('/api/v1/webhook-endpoints', {
    key: apiKey,
    method: 'POST',
    json: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, events: [] },
  });
  expect(endpoint.status).toBe(201);

  // pay, train; the training's webhooks are lost, so the reconciler (a claim loop asking
  // Replicate) is what finishes it
  const { paymentId, checkoutUrl } = await pay(mesh, apiKey);
  mesh.replicate.faults.dropWebhooks();
  const upload = await mesh.api(`/api/v1/versions/train/${paymentId}`, {
    key: apiKey,
    method: 'POST',
    body: photoForm(await distinctPhotos(6)),
  });
  expect(upload.status).toBe(202);
  const { version_id: versionId } = (await upload.json()) as { version_id: string };
  await waitFor(
    async () =>
      (
        (await (await mesh.api(`/api/v1/versions/info/${versionId}`, { key: apiKey })).json()) as {
          is_ready: boolean;
        }
      ).is_ready,
    { timeoutMs: 60_000, what: `version ${versionId} to be ready` },
  );
  mesh.replicate.faults.clear();

  // a prompt that Replicate throttles once, then serves; a prompt whose run fails
  mesh.replicate.faults.failNextApiCalls({ status: 429, method: 'POST', path: /\/predictions$/ });
  expect(await prompt(mesh, apiKey, versionId)).toBe('succeeded');
  mesh.replicate.faults.failNextRuns({ kind: 'prediction' });
  expect(await prompt(mesh, apiKey, versionId)).toBe('failed');
  // Replicate down for a while: the prompt is refused with 503 and its credits released.
  mesh.replicate.faults.failNextApiCalls({ status: 502, method: 'POST', path: /\/predictions$/, count: 20 });
  const refused = await mesh.api(`/api/v1/prompts/create/${versionId}`, {
    key: apiKey,
    method: 'POST',
    json: { prompt: 'a portrait of TOK', num_outputs: 1 },
  });
  expect(refused.status).toBe(503);
  mesh.replicate.faults.clear();
  // What the container healthcheck and a load balancer call.
  expect((await mesh.api('/healthz')).status).toBe(200);
  expect((await mesh.api('/readyz')).status).toBe(200);

  // forged webhooks of both sources
  const forgedStripe = await mesh.api('/api/v1/payments/webhook', {
    method: 'POST',
    headers: { 'stripe-signature': 't=1,v1=00', 'content-type': 'application/json' },
    body: '{"id":"evt_forged","type":"checkout.session.completed"}',
  });
  expect(forgedStripe.status).toBe(400);
  const forgedReplicate = await mesh.api('/api/v1/webhooks/replicate?kind=prediction', {
    method: 'POST',
    headers: {
      'webhook-id': 'msg_forged',
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': 'v1,AAAA',
      'content-type': 'application/json',
    },
    body: '{}',
  });
  expect(forgedReplicate.status).toBe(400);

  // a refund of the payment that paid for the model
  const sessionId = new URL(checkoutUrl).pathname.split('/').pop()!;
  await mesh.stripe.refund(mesh.stripe.session(sessionId)!.payment_intent as string);
  await paymentStatus(mesh, apiKey, paymentId, 'refunded');

  // The model deleted: Replicate refuses the deletes for a while (the job retries), then accepts.
  mesh.replicate.faults.failNextApiCalls({ status: 502, method: 'DELETE', path: /\/models\//, count: 1000 });
  expect((await mesh.api(`/api/v1/versions/${versionId}`, { key: apiKey, method: 'DELETE' })).status).toBe(
    202,
  );
  await waitFor(
    async () => has((await scrapeAll(mesh)).series, 'atelier_deletions_total', 'outcome', 'retried'),
    {
      timeoutMs: 30_000,
      what: 'the deletion job to retry',
    },
  );
  mesh.replicate.faults.clear();
  await waitFor(
    async () =>
      (await mesh.api(`/api/v1/versions/${versionId}`, { key: apiKey, method: 'DELETE' })).status === 410,
    { timeoutMs: 30_000, what: 'the deletion to complete' },
  );

  // The reconcilers publish what is in flight on their next pass; the delivery loop has sent the
  // events announced so far.
  const result = await waitFor(
    async () => {
      const s = await scrapeAll(mesh);
      return has(s.series, 'atelier_runs_in_flight', 'kind', 'training') &&
        has(s.series, 'atelier_runs_in_flight', 'kind', 'prompt') &&
        has(s.series, 'atelier_callbacks_total', 'outcome', 'delivered')
        ? s
        : undefined;
    },
    { timeoutMs: 20_000, what: 'the reconcilers to report runs in flight and a callback delivered' },
  );
  scrape = result.series;
  fs.mkdirSync(path.dirname(SAVED), { recursive: true });
  fs.writeFileSync(SAVED, result.text);
}, 180_000);

afterAll(async () => {
  await mesh?.stop();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

/** What an expression names that the scrape lacks. */
function missingFrom(series: Series[], expr: string): string[] {
  const problems: string[] = [];
  for (const name of promqlMetricNames(expr))
    if (!SCRAPE_SERIES.has(name) && !external(name) && !recorded(name) && !has(series, name))
      problems.push(`metric ${name}`);
  for (const m of promqlMatchers(expr)) {
    if (external(m.metric) || recorded(m.metric)) continue;
    if (isRealRegex(m)) {
      const re = new RegExp(`^(?:${m.value})$`);
      if (!series.some((x) => x.name === m.metric && re.test(x.labels[m.label] ?? '')))
        problems.push(`${m.metric}{${m.label}=~"${m.value}"} matches nothing`);
      continue;
    }
    for (const value of namedValues(m)) {
      if (unreachable(m.metric, m.label, value)) continue;
      const name = m.metric;
      const present = SCRAPE_SERIES.has(name)
        ? m.label === 'job' && (PROCESSES as readonly string[]).includes(value)
        : has(series, name, m.label, value);
      if (!present) problems.push(`${name}{${m.label}="${value}"}`);
    }
  }
  return problems;
}

describe('a scrape of every process after the end-to-end flow', () => {
  it('is saved, and every process reports its dependencies up', () => {
    expect(fs.readFileSync(SAVED, 'utf8')).toContain('atelier_dependency_up');
    const up = scrape.filter((s) => s.name === 'atelier_dependency_up');
    expect([...new Set(up.map((s) => `${s.labels.job}:${s.labels.dependency}`))].sort()).toEqual([
      'billing:postgres',
      'gateway:billing',
      'gateway:imager',
      'gateway:inferencer',
      'gateway:redis',
      'gateway:trainer',
      'imager:bucket',
      'inferencer:postgres',
      'trainer:postgres',
    ]);
  });

  it('holds every metric and label value an alert names', () => {
    const problems = alertRules().flatMap((r) => missingFrom(scrape, r.expr).map((p) => `${r.alert}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('holds every metric and label value a dashboard panel names', () => {
    const problems = dashboards().flatMap(({ file, json }) =>
      dashboardQueries(json).flatMap((q) =>
        missingFrom(scrape, q.expr).map((p) => `${path.basename(file)} ${q.where}: ${p}`),
      ),
    );
    expect(problems).toEqual([]);
  });

  it('is what the rule tests feed: the same label names, and label values the scrape has', () => {
    const problems: string[] = [];
    for (const test of ruleTests().tests) {
      for (const input of test.input_series) {
        const s = parseSeriesSelector(input.series);
        const where = `${test.name}: ${input.series}`;
        if (external(s.name)) continue;
        if (SCRAPE_SERIES.has(s.name)) {
          if (Object.keys(s.labels).sort().join() !== 'instance,job') problems.push(`${where}: labels`);
          continue;
        }
        const scraped = scrape.filter((x) => x.name === s.name);
        if (!scraped.length) {
          problems.push(`${where}: no such series in the scrape`);
          continue;
        }
        const names = (labels: Record<string, string>) => Object.keys(labels).sort().join(',');
        if (!scraped.some((x) => names(x.labels) === names(s.labels)))
          problems.push(
            `${where}: labels {${names(s.labels)}}, the scrape has {${[...new Set(scraped.map((x) => names(x.labels)))].join('} or {')}}`,
          );
        for (const [label, value] of Object.entries(s.labels)) {
          if (TARGET_LABELS.has(label) || unreachable(s.name, label, value)) continue;
          if (label === 'le') continue;
          if (!scraped.some((x) => x.labels[label] === value))
            problems.push(`${where}: ${label}="${value}" never appears in the scrape`);
        }
        if (!(PROCESSES as readonly string[]).includes(s.labels.job ?? ''))
          problems.push(`${where}: job="${s.labels.job}" is not a process`);
      }
    }
    expect(problems).toEqual([]);
  });
});
