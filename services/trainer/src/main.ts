import { createLogger, loadConfig, stopOnSignals } from '@atelier/kit';
import { trainerConfigSchema } from './config';
import { startTrainer } from './app';

async function main() {
  const config = loadConfig(trainerConfigSchema);
  const service = await startTrainer(config);
  stopOnSignals(service.stop, createLogger('trainer', config.LOG_LEVEL));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
