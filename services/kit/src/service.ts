import type { Logger } from 'pino';
import type { ServeSettings } from './config';
import { startGrpcServer, type RunningGrpcServer, type ServiceBinding } from './grpc-server';
import { startMetricsServer, type Metrics } from './metrics';

export interface RunningService {
  grpc: RunningGrpcServer;
  /** host:port of the gRPC server. */
  address: string;
  metricsPort: number;
  stop(): Promise<void>;
}

/**
 * Serves gRPC (with health) and /metrics, and on stop: NOT_SERVING, drain calls in flight,
 * then close what the service opened, in the order given.
 */
export async function serve(opts: {
  logger: Logger;
  metrics: Metrics;
  config: ServeSettings;
  serviceNames: string[];
  services: ServiceBinding[];
  /** Throws while a dependency does not answer; health reports NOT_SERVING meanwhile. */
  readiness: () => Promise<void>;
  close: Array<() => unknown>;
}): Promise<RunningService> {
  const { config } = opts;
  let grpcServer: RunningGrpcServer | undefined;
  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>>;
  try {
    grpcServer = await startGrpcServer({
      ...opts,
      host: config.GRPC_HOST,
      port: config.GRPC_PORT,
      readinessIntervalMs: config.HEALTH_CHECK_INTERVAL_MS,
    });
    metricsServer = await startMetricsServer(opts.metrics.registry, config.METRICS_PORT, config.GRPC_HOST);
  } catch (err) {
    // A failed bind (a port taken) leaves nothing open behind it: pools, Redis, timers.
    await grpcServer?.shutdown(0);
    for (const close of opts.close) {
      try {
        await close();
      } catch {
        // Best effort: the bind's error is the one to report.
      }
    }
    throw err;
  }
  opts.logger.info({ grpc: grpcServer.address, metrics_port: metricsServer.port }, 'listening');
  let stopped: Promise<void> | undefined;
  return {
    grpc: grpcServer,
    address: grpcServer.address,
    metricsPort: metricsServer.port,
    stop: () =>
      (stopped ??= (async () => {
        await grpcServer.shutdown(config.SHUTDOWN_GRACE_MS);
        await metricsServer.close();
        for (const close of opts.close) await close();
        opts.logger.info('stopped');
      })()),
  };
}

/** SIGTERM/SIGINT stop the process gracefully; a second signal exits at once. */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
