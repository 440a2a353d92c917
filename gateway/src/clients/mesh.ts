import { createGrpcClient, createHealthChecker, type GrpcClient, type Metrics } from '@atelier/kit';
import { billing, imager, inferencer, trainer } from '@atelier/protos';
import type { GatewayConfig } from '../config';

/** The gateway's view of the mesh: one client per service, and their health checkers. */
export function createMesh(config: GatewayConfig, metrics?: Metrics) {
  const opts = { timeoutMs: config.GRPC_TIMEOUT_MS, metrics };
  // Each service once: its generated definition names it (for health) and its address is dialled once.
  const targets = {
    billing: { definition: billing.BillingServiceService, address: config.BILLING_ADDR },
    imager: { definition: imager.ImagerServiceService, address: config.IMAGER_ADDR },
    trainer: { definition: trainer.TrainerServiceService, address: config.TRAINER_ADDR },
    inferencer: { definition: inferencer.InferencerServiceService, address: config.INFERENCER_ADDR },
  };
  type Clients = { [K in keyof typeof targets]: GrpcClient<(typeof targets)[K]['definition']> };
  const entries = Object.entries(targets);
  const clients = Object.fromEntries(
    entries.map(([name, t]) => [name, createGrpcClient(t.definition, t.address, opts)]),
  ) as Clients;
  const health = entries.map(([name, t]) => ({
    name,
    // '/atelier.billing.v1.BillingService/CreateAccount' → 'atelier.billing.v1.BillingService'
    service: (Object.values(t.definition) as Array<{ path: string }>)[0]!.path.split('/')[1]!,
    checker: createHealthChecker(t.address),
  }));
  return {
    ...clients,
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
    close() {
      for (const c of Object.values(clients)) c.close();
      for (const h of health) h.checker.close();
    },
  };
}
export type Mesh = ReturnType<typeof createMesh>;
