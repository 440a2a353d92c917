import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { withTransaction } from './db';

/** A pool, or the client of an open transaction: repositories run on either. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/** What a service's domain needs from storage: its repositories on the pool, and transactions. */
export interface Store<R> {
  repos: R;
  /** Runs fn in one transaction: everything it does through `repos` commits together or not at all. */
  transaction<T>(fn: (repos: R) => Promise<T>): Promise<T>;
}

/**
 * A service's store from the function that builds its repositories on one connection. The same
 * builder serves the pool (`repos`) and each transaction's client, so a use case never chooses.
 */
export function createStore<R>(pool: Pool, repositories: (db: Queryable) => R): Store<R> {
  return {
    repos: repositories(pool),
    transaction: (fn) => withTransaction(pool, (client) => fn(repositories(client))),
  };
}
