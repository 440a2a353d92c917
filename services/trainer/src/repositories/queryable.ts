import type { QueryResult, QueryResultRow } from 'pg';

/** A pool, or the client of an open transaction: repositories run on either. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}
