import type { Logger } from 'pino';
import type { Metrics, Redis } from '@atelier/kit';
import type { Mesh } from './clients/mesh';
import type { GatewayConfig } from './config';

/** Everything a route handler may use, built once in app.ts. */
export interface GatewayDeps {
  config: GatewayConfig;
  mesh: Mesh;
  redis: Redis;
  logger: Logger;
  metrics: Metrics;
  /** Tells the gateway an account's payments changed (its tier and limits may have). */
  accountChanged?: (accountId: string) => void;
}
