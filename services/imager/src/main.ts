import { createLogger, loadConfig, stopOnSignals } from '@atelier/kit';
import { imagerConfigSchema } from './config';
import { startImager } from './app';

async function main() {
  const config = loadConfig(imagerConfigSchema);
  const service = await startImager(config);
  stopOnSignals(service.stop, createLogger('imager', config.LOG_LEVEL));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
