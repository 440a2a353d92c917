import { Pool, types, type PoolClient, type PoolConfig } from 'pg';
import { Errors } from './errors';

export type { Pool, PoolClient };

const INT8_OID = 20;

/** int8 (bigint, count(*), sum of integers) as a JS number. node-postgres returns it as a string
 * because not every int8 fits a double; ours do (money in minor units, micros), and a value that
 * would not is refused here rather than rounded silently into a wrong amount. */
export function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n))
    throw new RangeError(`int8 value ${text} is beyond JavaScript's safe integers`);
  return n;
}

/** Per pool, not pg's global registry, so a process's other clients (tests' fixtures) keep theirs. */
const PG_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? parseInt8
      : (types.getTypeParser(oid, format) as unknown)) as typeof types.getTypeParser,
};

export function createPool(connectionString: string, overrides: PoolConfig = {}): Pool {
  const pool = new Pool({
    connectionString,
    types: PG_TYPES,
    max: 10,
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    // A statement that hangs must not hold a request past any sane deadline.
    statement_timeout: 15_000,
    ...overrides,
  });
  // A client losing its server must not crash the process, idle (pool 'error') or checked out
  // between two statements (client 'error'); the query in progress or the next one reports it.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Runs fn in one transaction; rolls back on any throw. */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08001',
  '08003',
  '08006',
  '53300', // too_many_connections
]);

/** True when the database could not be reached, as opposed to a bug or a constraint. */
export function isDatabaseUnavailable(err: unknown): boolean {
  // Duck-typed: socket errors from another realm (jest's sandbox) fail `instanceof Error`.
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  return (
    typeof message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED/i.test(message)
  );
}

/** SQLSTATE codes repositories translate into domain errors; domain code never sees them. */
export const PG_UNIQUE_VIOLATION = '23505';
export const PG_FOREIGN_KEY_VIOLATION = '23503';

export function pgCode(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

/** Pings the database; used by health checks. */
export async function pingDatabase(pool: Pool): Promise<void> {
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    throw Errors.unavailable('postgres', err);
  }
}
