import { Errors } from './errors';

/**
 * Keyset paging shared by every listing: the opaque cursor is the last row's (created_at to the
 * microsecond, id), so a page is one indexed statement, `(created_at, id) < cursor`.
 */
export interface Cursor {
  createdKey: string;
  id: string;
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The SQL expression a repository selects as `created_key` (a JS Date would drop the microseconds). */
export const createdKeySql = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdKey, c.id])).toString('base64url');
}

/** Anything the service did not hand out is a 400, never a query with garbage in it. */
/** 2024-02-30 matches the pattern but is no day: Postgres would fail the whole query on it (a 500). */
function isRealInstant(key: string): boolean {
  const [y, mo, d, h, mi, sec] = [0, 5, 8, 11, 14, 17].map((at, i) =>
    Number(key.slice(at, at + (i ? 2 : 4))),
  );
  const t = new Date(Date.UTC(y!, mo! - 1, d, h, mi, sec));
  return (
    t.getUTCFullYear() === y &&
    t.getUTCMonth() === mo! - 1 &&
    t.getUTCDate() === d &&
    t.getUTCHours() === h &&
    t.getUTCMinutes() === mi &&
    t.getUTCSeconds() === sec
  );
}

export function decodeCursor(raw: string): Cursor | undefined {
  if (!raw) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw Errors.invalidCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw Errors.invalidCursor();
  const [createdKey, id] = parsed as unknown[];
  if (
    typeof createdKey !== 'string' ||
    !CURSOR_TIME.test(createdKey) ||
    !isRealInstant(createdKey) ||
    typeof id !== 'string' ||
    !UUID.test(id)
  ) {
    throw Errors.invalidCursor();
  }
  return { createdKey, id };
}

export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;

export function pageSize(limit: number): number {
  if (!limit) return DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw Errors.invalid(`limit must be in 1..${MAX_PAGE}, got ${limit}`);
  return limit;
}

/**
 * Cuts a page fetched with `limit = size + 1` (the extra row tells whether another page
 * follows, without a count) and the cursor of the next page ('' when none).
 */
export function pageOf<T extends { createdKey: string; id: string }>(
  rows: T[],
  size: number,
): { items: T[]; nextCursor: string } {
  const items = rows.slice(0, size);
  const last = items.at(-1);
  return {
    items,
    nextCursor: rows.length > size && last ? encodeCursor({ createdKey: last.createdKey, id: last.id }) : '',
  };
}
