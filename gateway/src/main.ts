import { createLogger, loadConfig, stopOnSignals } from '@atelier/kit';
import { gatewayConfigSchema } from './config';
import { startGateway } from './app';

async function main() {
  const config = loadConfig(gatewayConfigSchema);
  const gateway = await startGateway(config);
  stopOnSignals(gateway.stop, createLogger('gateway', config.LOG_LEVEL));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
