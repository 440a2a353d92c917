import type { z } from 'zod';
import { loadConfig } from './config';
import { createLogger } from './logger';
import { stopOnSignals } from './service';

/**
 * The body of every process's main.ts: parse the config once (every bad variable in one error),
 * start, and stop gracefully on SIGTERM/SIGINT. A failure to start prints why and exits 1.
 */
export function runProcess<S extends z.ZodType<{ LOG_LEVEL: string }>>(
  name: string,
  schema: S,
  start: (config: z.infer<S>) => Promise<{ stop(): Promise<void> }>,
): void {
  const main = async () => {
    const config = loadConfig(schema);
    const running = await start(config);
    stopOnSignals(() => running.stop(), createLogger(name, config.LOG_LEVEL));
  };
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
