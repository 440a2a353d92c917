import http from 'node:http';
import { AddressInfo } from 'node:net';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

/** Serves /metrics on its own port so scraping never competes with traffic. */
export async function startMetricsServer(
  registry: Registry,
  port: number,
  host = '127.0.0.1',
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(await registry.metrics());
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
