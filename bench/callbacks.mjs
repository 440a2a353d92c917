// callbacks: how fast events reach a customer's server, and how late after the change they announce.
//
// 1. Throughput: N events published to billing (PublishEvents, as the outbox relays do), delivered
//    by billing's webhook_delivery job to a receiver on 127.0.0.1 that answers 200 at once; events
//    per second from the first publish to the last receipt. Baseline, in the same run: the same
//    number of signed-size POSTs sent straight to the receiver from this process with the job's
//    concurrency — what the receiver and loopback allow without Atelier.
// 2. Delay: prompts with a callback_url on a ready version; for each, the time from the prompt's
//    completion (inferencer.prompts.completed_at, written in the transaction that also writes the
//    outbox row) to the callback's arrival. It spans the outbox relay's pass, PublishEvents, the
//    delivery job's pass and the POST: with the default 250 ms intervals, ~0.5 s is expected.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { log, now, percentile, round, waitFor } from './lib/common.mjs';
import { api, billingClient, createAccount, startStack } from './lib/stack.mjs';
import { readyVersion } from './lib/versions.mjs';

const EVENTS = Number(process.env.BENCH_CALLBACKS_EVENTS ?? 2000);
const PROMPTS = Number(process.env.BENCH_CALLBACKS_PROMPTS ?? 30);
const CONCURRENCY = 16;
export const target = { events_per_second_min: 200, delay_p99_ms_max: 2000 };

function startReceiver() {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({
        at: Date.now(),
        path: req.url,
        id: req.headers['webhook-id'],
        body: Buffer.concat(chunks),
      });
      res.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, received, port: server.address().port })),
  );
}

export async function run() {
  const stack = await startStack({
    name: 'callbacks',
    replicate: { trainingMs: 100, predictionMs: 300 },
    env: { RATE_LIMIT_PER_WINDOW: '100000', WEBHOOK_ALLOW_PRIVATE: 'true', LOG_LEVEL: 'warn' },
  });
  const db = await stack.db();
  const receiver = await startReceiver();
  const billing = billingClient(stack);
  try {
    const account = await createAccount(stack);
    const created = await api(stack, '/api/v1/webhook-endpoints', {
      key: account.apiKey,
      method: 'POST',
      json: { url: `http://127.0.0.1:${receiver.port}/all`, events: ['prompt.succeeded'] },
    });
    if (created.status !== 201) throw new Error(`webhook-endpoints answered ${created.status}`);

    // Baseline: the receiver driven directly with the delivery job's concurrency.
    const body = JSON.stringify({
      id: randomUUID(),
      type: 'prompt.succeeded',
      created_at: new Date(),
      data: {},
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const post = () =>
      new Promise((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: receiver.port, path: '/baseline', method: 'POST', agent },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    let sent = 0;
    const b0 = now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (sent < EVENTS) {
          sent++;
          await post();
        }
      }),
    );
    const baselinePerS = EVENTS / ((now() - b0) / 1000);
    agent.destroy();

    // Throughput through Atelier.
    const events = Array.from({ length: EVENTS }, () => ({
      eventId: randomUUID(),
      accountId: account.accountId,
      type: 'prompt.succeeded',
      createdAt: new Date(),
      dataJson: JSON.stringify({ prompt_id: randomUUID(), status: 'succeeded', images: [] }),
      callbackUrl: '',
    }));
    const t0 = now();
    for (let i = 0; i < events.length; i += 100)
      await billing.publishEvents({ events: events.slice(i, i + 100) });
    const published = now() - t0;
    await waitFor(() => receiver.received.filter((r) => r.path === '/all').length >= EVENTS, {
      timeoutMs: 300_000,
      intervalMs: 20,
      what: `${EVENTS} callbacks`,
    });
    const seconds = (now() - t0) / 1000;
    const perS = EVENTS / seconds;
    const ids = new Set(receiver.received.filter((r) => r.path === '/all').map((r) => r.id));
    log(
      `callbacks: ${EVENTS} events in ${round(seconds, 2)} s (${round(perS, 0)}/s; published in ${round(published, 0)} ms); baseline ${round(baselinePerS, 0)}/s`,
    );

    // Delay from a prompt's completion to its callback.
    const { versionId } = await readyVersion(stack, db, account, 10_000);
    const delays = [];
    for (let i = 0; i < PROMPTS; i++) {
      const res = await api(stack, `/api/v1/prompts/create/${versionId}`, {
        key: account.apiKey,
        method: 'POST',
        json: {
          prompt: `a photo of TOK, callbacks ${i}`,
          num_outputs: 1,
          width: 256,
          height: 256,
          callback_url: `http://127.0.0.1:${receiver.port}/prompt/${i}`,
        },
      });
      if (res.status !== 202) throw new Error(`prompts/create answered ${res.status}: ${await res.text()}`);
      const { prompt_id: promptId } = await res.json();
      const hit = await waitFor(() => receiver.received.find((r) => r.path === `/prompt/${i}`), {
        timeoutMs: 60_000,
        what: `the callback of prompt ${i}`,
      });
      const { rows } = await db.query('SELECT completed_at FROM inferencer.prompts WHERE id = $1', [
        promptId,
      ]);
      delays.push(hit.at - rows[0].completed_at.getTime());
    }
    const p50 = round(percentile(delays, 50), 0);
    const p99 = round(percentile(delays, 99), 0);
    log(`callbacks: completion → callback p50 ${p50} ms, p99 ${p99} ms over ${PROMPTS} prompts`);

    const ratio = round(perS / baselinePerS, 2);
    const met = perS >= target.events_per_second_min && p99 <= target.delay_p99_ms_max && ids.size === EVENTS;
    return {
      figures: {
        events: EVENTS,
        events_per_second: round(perS, 0),
        distinct_webhook_ids: ids.size,
        publish_ms: round(published, 0),
        delay_ms: { p50, p99, max: round(Math.max(...delays), 0), prompts: PROMPTS },
      },
      baseline: { direct_posts_per_second: round(baselinePerS, 0), concurrency: CONCURRENCY },
      ratio: { events_per_second_to_direct: ratio },
      target,
      met,
      details: { delays_ms: delays.map((d) => round(d, 0)) },
      table: [
        {
          figure: 'events/s to a local receiver',
          value: round(perS, 0),
          baseline: round(baselinePerS, 0),
          ratio,
          target: `≥ ${target.events_per_second_min}`,
          met: perS >= target.events_per_second_min,
        },
        { figure: 'completion → callback p50 ms', value: p50, baseline: '', ratio: '', target: '', met: '' },
        {
          figure: 'completion → callback p99 ms',
          value: p99,
          baseline: '',
          ratio: '',
          target: `≤ ${target.delay_p99_ms_max}`,
          met: p99 <= target.delay_p99_ms_max,
        },
      ],
      notes: [
        `${EVENTS} events published through billing's PublishEvents in batches of 100, delivered by the webhook_delivery job (batch ${50}, concurrency ${CONCURRENCY}, interval 250 ms) as signed Standard Webhooks POSTs; baseline = the same number of POSTs sent straight to the receiver with concurrency ${CONCURRENCY}`,
        `delay = receipt at the callback_url − inferencer.prompts.completed_at, over ${PROMPTS} prompts one after another; it spans the outbox relay pass (OUTBOX_INTERVAL_MS 250), PublishEvents, the delivery pass (WEBHOOK_DELIVERY_INTERVAL_MS 250) and the POST`,
      ],
    };
  } finally {
    billing.close();
    receiver.server.closeAllConnections();
    receiver.server.close();
    await db.end().catch(() => undefined);
    await stack.stop();
  }
}
