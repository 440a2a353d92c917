import fs from 'node:fs';
import { z } from 'zod';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once, at boot, and lists every bad variable in one error. Any variable
 * may instead be given as `<NAME>_FILE`, the path of a file holding its value (Docker and
 * Kubernetes secrets are mounted as files, which keeps them out of `docker inspect` and the
 * process environment); one trailing newline is dropped. Setting both is an error.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // An empty variable means unset: compose and .env files cannot unset a variable, only blank it.
  const present: Record<string, string> = Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''),
  );
  const problems = readFileVariables(present, schemaKeys(schema));
  const result = schema.safeParse(present);
  if (result.success && !problems.length) return result.data;
  throw new ConfigError([
    ...problems,
    ...(result.error?.issues ?? [])
      .filter((issue) => !problems.some((p) => p.startsWith(`${issue.path.join('.')}:`)))
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
  ]);
}

/** The variables an object schema reads (through refinements and pipes); undefined if not an object. */
function schemaKeys(schema: z.ZodType): Set<string> | undefined {
  const shape = (schema as { shape?: unknown }).shape;
  if (shape && typeof shape === 'object') return new Set(Object.keys(shape));
  const def = schema.def as { in?: z.ZodType };
  return def.in ? schemaKeys(def.in) : undefined;
}

/**
 * Replaces each `<NAME>_FILE` in `env` by `<NAME>` read from that file, for the names the schema
 * reads (others, such as SSL_CERT_FILE, belong to someone else); returns what went wrong.
 */
function readFileVariables(env: Record<string, string>, names: Set<string> | undefined): string[] {
  const problems: string[] = [];
  for (const [key, file] of Object.entries(env)) {
    const name = /^([A-Z][A-Z0-9_]*)_FILE$/.exec(key)?.[1];
    if (!name || (names && !names.has(name))) continue;
    delete env[key];
    if (env[name] !== undefined) {
      problems.push(`${name}: set either ${name} or ${key}, not both`);
      continue;
    }
    try {
      const value = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      if (value !== '') env[name] = value;
    } catch (err) {
      // The path only: the message must not leak a secret, and the path is not one.
      problems.push(
        `${name}: cannot read ${key}=${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  return problems;
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
