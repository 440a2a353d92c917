import { z } from 'zod';
import { ConfigError, loadConfig, serviceEnv } from '@atelier/kit';

describe('loadConfig', () => {
  it('lists every bad variable in one error', () => {
    const schema = serviceEnv.extend({ BILLING_ADDR: z.string().min(1) });
    let error: unknown;
    try {
      loadConfig(schema, { DATABASE_URL: 'mysql://nope', GRPC_PORT: '99999', LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['DATABASE_URL', 'GRPC_PORT', 'LOG_LEVEL', 'BILLING_ADDR'])
      expect(problems).toContain(name);
  });

  it('applies defaults and coerces numbers', () => {
    const config = loadConfig(serviceEnv, { DATABASE_URL: 'postgres://x@h/db' });
    expect(config).toEqual(
      expect.objectContaining({ GRPC_PORT: 0, LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: 10_000 }),
    );
  });
});
