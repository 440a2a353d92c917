import { createLogger, loadConfig, stopOnSignals } from '@atelier/kit';
import { billingConfigSchema } from './config';
import { startBilling } from './app';

async function main() {
  const config = loadConfig(billingConfigSchema);
  const service = await startBilling(config);
  stopOnSignals(service.stop, createLogger('billing', config.LOG_LEVEL));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
