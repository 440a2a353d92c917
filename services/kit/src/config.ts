import { z } from 'zod';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once, at boot, and lists every bad variable in one error. */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // An empty variable means unset: compose and .env files cannot unset a variable, only blank it.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const result = schema.safeParse(present);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
  );
}

/** Building blocks shared by every service's schema. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  url: () => z.url(),
  bool: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0'])
      .default(fallback ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1'),
  ms: (fallback: number) => z.coerce.number().int().positive().default(fallback),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** What every gRPC service needs: where to listen and its database. Redis is the gateway's alone. */
export const serviceEnv = z.object({
  GRPC_PORT: env.port(0),
  GRPC_HOST: z.string().default('127.0.0.1'),
  METRICS_PORT: env.port(0),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
  LOG_LEVEL: env.logLevel(),
  SHUTDOWN_GRACE_MS: env.ms(10_000),
  /** How often health re-checks Postgres and Redis. */
  HEALTH_CHECK_INTERVAL_MS: env.ms(2_000),
});
export type ServiceEnv = z.infer<typeof serviceEnv>;
/** The part of a service's config that serve() reads. */
export type ServeSettings = Pick<
  ServiceEnv,
  'GRPC_HOST' | 'GRPC_PORT' | 'METRICS_PORT' | 'HEALTH_CHECK_INTERVAL_MS' | 'SHUTDOWN_GRACE_MS'
>;
