import { createLogger, loadConfig, stopOnSignals } from '@atelier/kit';
import { inferencerConfigSchema } from './config';
import { startInferencer } from './app';

async function main() {
  const config = loadConfig(inferencerConfigSchema);
  const service = await startInferencer(config);
  stopOnSignals(service.stop, createLogger('inferencer', config.LOG_LEVEL));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
