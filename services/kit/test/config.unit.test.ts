import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

describe('loadConfig with <NAME>_FILE (Docker and Kubernetes secrets)', () => {
  const schema = serviceEnv.extend({
    STRIPE_SECRET_KEY: z.string().min(1),
    STRIPE_WEBHOOK_SECRET: z.string().min(1),
  });
  let dir: string;
  const secret = (name: string, content: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode: 0o600 });
    return file;
  };
  const problemsOf = (env: NodeJS.ProcessEnv): string[] => {
    try {
      loadConfig(schema, env);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-secrets-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads a variable from the file its _FILE names, without the trailing newline', () => {
    const config = loadConfig(schema, {
      DATABASE_URL_FILE: secret('database_url', 'postgres://billing:s3cret@db/atelier\n'),
      STRIPE_SECRET_KEY_FILE: secret('stripe', 'sk_test_123\r\n'),
      STRIPE_WEBHOOK_SECRET: 'whsec_plain',
    });
    expect(config).toMatchObject({
      DATABASE_URL: 'postgres://billing:s3cret@db/atelier',
      STRIPE_SECRET_KEY: 'sk_test_123',
      STRIPE_WEBHOOK_SECRET: 'whsec_plain',
    });
    expect(config).not.toHaveProperty('STRIPE_SECRET_KEY_FILE');
  });

  it('keeps inner whitespace and a value that is not a secret works the same way', () => {
    const config = loadConfig(schema, {
      DATABASE_URL: 'postgres://x@h/db',
      STRIPE_SECRET_KEY_FILE: secret('a', 'two words \n\n'),
      STRIPE_WEBHOOK_SECRET: 'w',
      GRPC_PORT_FILE: secret('port', '50051\n'),
    });
    expect(config.STRIPE_SECRET_KEY).toBe('two words \n');
    expect(config.GRPC_PORT).toBe(50051);
  });

  it('refuses both forms at once, a file it cannot read, and an empty file for a required value', () => {
    const problems = problemsOf({
      DATABASE_URL: 'postgres://x@h/db',
      DATABASE_URL_FILE: secret('db', 'postgres://y@h/db'),
      STRIPE_SECRET_KEY_FILE: path.join(dir, 'missing'),
      STRIPE_WEBHOOK_SECRET_FILE: secret('empty', '\n'),
    });
    expect(problems).toEqual([
      'DATABASE_URL: set either DATABASE_URL or DATABASE_URL_FILE, not both',
      `STRIPE_SECRET_KEY: cannot read STRIPE_SECRET_KEY_FILE=${path.join(dir, 'missing')} (ENOENT)`,
      expect.stringMatching(/^STRIPE_WEBHOOK_SECRET: /),
    ]);
    // The value never appears in an error.
    expect(problems.join('\n')).not.toContain('postgres://y@h/db');
  });

  it('leaves _FILE variables the schema does not read alone (SSL_CERT_FILE is not ours)', () => {
    const config = loadConfig(schema, {
      DATABASE_URL: 'postgres://x@h/db',
      STRIPE_SECRET_KEY: 's',
      STRIPE_WEBHOOK_SECRET: 'w',
      SSL_CERT_FILE: path.join(dir, 'does-not-exist.pem'),
    });
    expect(config.STRIPE_SECRET_KEY).toBe('s');
  });

  it('reads files for a schema with refinements too (the services refine theirs)', () => {
    const refined = schema.refine((c) => c.STRIPE_SECRET_KEY !== c.STRIPE_WEBHOOK_SECRET, 'distinct');
    expect(
      loadConfig(refined, {
        DATABASE_URL: 'postgres://x@h/db',
        STRIPE_SECRET_KEY_FILE: secret('k', 'k1'),
        STRIPE_WEBHOOK_SECRET: 'w1',
      }).STRIPE_SECRET_KEY,
    ).toBe('k1');
  });
});
