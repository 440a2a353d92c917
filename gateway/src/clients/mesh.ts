import { createGrpcClient, createHealthChecker, type Metrics } from '@atelier/kit';
import { billing, imager, inferencer, trainer } from '@atelier/protos';
import type { GatewayConfig } from '../config';

/** The gateway's view of the mesh: one client per service, and their health checkers. */
export function createMesh(config: GatewayConfig, metrics?: Metrics) {
  const opts = { timeoutMs: config.GRPC_TIMEOUT_MS, metrics };
  const targets = {
    billing: { address: config.BILLING_ADDR, service: 'atelier.billing.v1.BillingService' },
    imager: { address: config.IMAGER_ADDR, service: 'atelier.imager.v1.ImagerService' },
    trainer: { address: config.TRAINER_ADDR, service: 'atelier.trainer.v1.TrainerService' },
    inferencer: { address: config.INFERENCER_ADDR, service: 'atelier.inferencer.v1.InferencerService' },
  };
  const health = Object.entries(targets).map(([name, t]) => ({
    name,
    service: t.service,
    checker: createHealthChecker(t.address),
  }));
  const mesh = {
    billing: createGrpcClient(billing.BillingServiceService, config.BILLING_ADDR, opts),
    imager: createGrpcClient(imager.ImagerServiceService, config.IMAGER_ADDR, opts),
    trainer: createGrpcClient(trainer.TrainerServiceService, config.TRAINER_ADDR, opts),
    inferencer: createGrpcClient(inferencer.InferencerServiceService, config.INFERENCER_ADDR, opts),
    /** One check per service, throwing while it does not report SERVING. */
    healthChecks: Object.fromEntries(
      health.map((h) => [
        h.name,
        async () => {
          const status = await h.checker.check(h.service);
          if (status !== 'SERVING') throw new Error(`${h.name} is ${status}`);
        },
      ]),
    ),
    /** Names of the services that do not report SERVING. */
    async unhealthy(): Promise<string[]> {
      const results = await Promise.all(
        health.map(async (h) => ((await h.checker.check(h.service)) === 'SERVING' ? null : h.name)),
      );
      return results.filter((n): n is string => n !== null);
    },
    close() {
      for (const c of [mesh.billing, mesh.imager, mesh.trainer, mesh.inferencer]) c.close();
      for (const h of health) h.checker.close();
    },
  };
  return mesh;
}
export type Mesh = ReturnType<typeof createMesh>;
