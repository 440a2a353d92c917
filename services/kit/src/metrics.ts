import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { listen } from './listen';

/** One registry per process, with the RED metrics every gRPC server and client records. */
export function createMetrics(service: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    grpcServerHandled: new Counter({
      name: 'atelier_grpc_server_handled_total',
      help: 'gRPC calls served, by method and status code',
      labelNames: ['method', 'code'] as const,
      registers: [registry],
    }),
    grpcServerDuration: new Histogram({
      name: 'atelier_grpc_server_duration_seconds',
      help: 'gRPC call duration on the server',
      labelNames: ['method'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    grpcClientHandled: new Counter({
      name: 'atelier_grpc_client_handled_total',
      help: 'gRPC calls made, by target method and status code',
      labelNames: ['method', 'code'] as const,
      registers: [registry],
    }),
    business: businessMetrics(registry),
  };
}

/**
 * The product's own metrics, declared once so dashboards and alerts have one list to name.
 * Every service registers all of them; each moves only the ones it owns. Labels are small
 * fixed sets: never ids.
 */
function businessMetrics(registry: Registry) {
  const registers = [registry];
  return {
    payments: new Counter({
      name: 'atelier_payments_total',
      help: 'Payment status transitions',
      labelNames: ['status'] as const,
      registers,
    }),
    revenue: new Counter({
      name: 'atelier_revenue_minor_total',
      help: 'Revenue of paid payments in minor units',
      labelNames: ['currency'] as const,
      registers,
    }),
    credits: new Counter({
      name: 'atelier_credits_total',
      help: 'Image credits moved, by ledger reason (grant, reserve, settle, release, revoke)',
      labelNames: ['reason'] as const,
      registers,
    }),
    trainings: new Counter({
      name: 'atelier_trainings_total',
      help: 'Training status transitions',
      labelNames: ['status'] as const,
      registers,
    }),
    prompts: new Counter({
      name: 'atelier_prompts_total',
      help: 'Prompt status transitions',
      labelNames: ['status'] as const,
      registers,
    }),
    runFailures: new Counter({
      name: 'atelier_run_failures_total',
      help: 'Failed trainings and prompts by reason (replicate, timeout, transfer, canceled)',
      labelNames: ['kind', 'reason'] as const,
      registers,
    }),
    timeToReady: new Histogram({
      name: 'atelier_time_to_ready_seconds',
      help: 'Upload accepted to model ready',
      buckets: [30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
      registers,
    }),
    replicateRequests: new Counter({
      name: 'atelier_replicate_requests_total',
      help: 'Replicate API calls by operation and outcome (ok, throttled, error)',
      labelNames: ['operation', 'outcome'] as const,
      registers,
    }),
    replicateDuration: new Histogram({
      name: 'atelier_replicate_request_duration_seconds',
      help: 'Replicate API call latency',
      labelNames: ['operation'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    webhooks: new Counter({
      name: 'atelier_webhook_deliveries_total',
      help: 'Webhooks received by source (stripe, replicate) and outcome (applied, duplicate, ignored, rejected)',
      labelNames: ['source', 'outcome'] as const,
      registers,
    }),
    transferBytes: new Counter({
      name: 'atelier_transfer_bytes_total',
      help: 'Bytes written to the bucket by direction (dataset, output)',
      labelNames: ['direction'] as const,
      registers,
    }),
    costEstimate: new Counter({
      name: 'atelier_cost_estimate_micros_total',
      help: 'Estimated Replicate cost in micro-units of the billing currency',
      labelNames: ['kind'] as const,
      registers,
    }),
    deletions: new Counter({
      name: 'atelier_deletions_total',
      help: 'Deletion jobs by kind (version, account, dataset) and outcome (completed, retried)',
      labelNames: ['kind', 'outcome'] as const,
      registers,
    }),
    deletionsPending: new Gauge({
      name: 'atelier_deletions_pending',
      help: 'Deletions requested and not finished (datasets: zips past their retention still stored), by kind',
      labelNames: ['kind'] as const,
      registers,
    }),
    deletionSeconds: new Histogram({
      name: 'atelier_deletion_duration_seconds',
      help: 'Deletion requested to deletion finished, by kind (version, account)',
      labelNames: ['kind'] as const,
      buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers,
    }),
    inFlight: new Gauge({
      name: 'atelier_runs_in_flight',
      help: 'Trainings and prompts not yet finished, as last seen by the reconciler',
      labelNames: ['kind'] as const,
      registers,
    }),
    callbacks: new Counter({
      name: 'atelier_callbacks_total',
      help: "Attempts to deliver an event to a customer's server by outcome (delivered, retry, failed: given up, skipped: endpoint disabled)",
      labelNames: ['outcome'] as const,
      registers,
    }),
    callbackBacklogAge: new Gauge({
      name: 'atelier_callback_oldest_pending_seconds',
      help: 'Age of the oldest event not yet delivered to a customer server (0 when none is pending)',
      registers,
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

/** Serves /metrics on its own port so scraping never competes with traffic. */
export async function startMetricsServer(
  registry: Registry,
  port: number,
  host = '127.0.0.1',
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    // A collector that throws must answer 500, not leave an unhandled rejection behind.
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  return {
    port: await listen(server, port, host),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
