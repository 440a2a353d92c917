import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { toTarget } from './grpc-client';

type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
interface HealthClient extends grpc.Client {
  check(
    req: { service: string },
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { status: HealthStatus }) => void,
  ): void;
}

let ctor: (new (target: string, creds: grpc.ChannelCredentials) => HealthClient) | undefined;

/** Asks a server's grpc.health.v1 service; used by the gateway's /readyz and the image healthcheck. */
export function createHealthChecker(address: string) {
  if (!ctor) {
    const def = protoLoader.loadSync(protoPath, { keepCase: true, enums: String });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      grpc: { health: { v1: { Health: typeof ctor } } };
    };
    ctor = pkg.grpc.health.v1.Health;
  }
  const client = new ctor!(toTarget(address), grpc.credentials.createInsecure());
  return {
    check: (service = '', timeoutMs = 1_000) =>
      new Promise<HealthStatus>((resolve) =>
        client.check({ service }, { deadline: Date.now() + timeoutMs }, (err, res) =>
          resolve(
            err
              ? err.code === grpc.status.NOT_FOUND
                ? 'SERVICE_UNKNOWN'
                : 'UNKNOWN'
              : (res?.status ?? 'UNKNOWN'),
          ),
        ),
      ),
    close: () => client.close(),
  };
}
