import { useInfiniteQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, call, type Version } from '../api/client';
import { ProblemView } from '../components/ProblemView';
import { isRunning, Status } from '../components/Status';
import { Link, useLocation } from '../router';

const STATUSES = ['starting', 'processing', 'succeeded', 'failed', 'canceled'] as const;
type Filter = (typeof STATUSES)[number] | '';

/** My models, newest first, a page at a time on the API's keyset cursor; live while any trains. */
export function ModelsScreen() {
  const [status, setStatus] = useState<Filter>('');
  const deleted = useLocation().search.get('deleted');
  const versions = useInfiniteQuery({
    queryKey: ['versions', status],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      call(
        api.GET('/api/v1/versions', {
          params: {
            query: { limit: 12, ...(pageParam ? { cursor: pageParam } : {}), ...(status ? { status } : {}) },
          },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: (q) =>
      q.state.data?.pages.some((p) => p.versions.some((v) => isRunning(v.status))) ? 2000 : false,
  });
  const list: Version[] = versions.data?.pages.flatMap((p) => p.versions) ?? [];

  return (
    <>
      <h1>Models</h1>
      {deleted && (
        <p className="notice" role="status">
          {deleted} is being deleted.
        </p>
      )}
      <div className="toolbar">
        <label htmlFor="status-filter">Show</label>
        <select id="status-filter" value={status} onChange={(e) => setStatus(e.target.value as Filter)}>
          <option value="">All models</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s === 'succeeded' ? 'Ready' : s[0]!.toUpperCase() + s.slice(1)}
            </option>
          ))}
        </select>
      </div>
      <ProblemView error={versions.error} />
      {versions.isPending && <p>Loading models…</p>}
      {versions.data && list.length === 0 && (
        <p>
          {status ? 'No models with this status.' : 'No models yet.'}{' '}
          <Link to="/plans">Buy a training plan</Link> to train one.
        </p>
      )}
      <ul className="grid models">
        {list.map((v) => (
          <li key={v.version_id} className="card">
            <h2>
              <Link to={`/models/${v.version_id}`}>
                {v.trigger_word || v.class} <span className="muted">({v.class})</span>
              </Link>
            </h2>
            <p>
              <Status status={v.status} />
              {v.is_ready && <> · {v.images.remaining} images left</>}
            </p>
            <p className="muted small">Created {new Date(v.created_at).toLocaleString()}</p>
          </li>
        ))}
      </ul>
      {versions.hasNextPage && (
        <button type="button" onClick={() => versions.fetchNextPage()} disabled={versions.isFetchingNextPage}>
          {versions.isFetchingNextPage ? 'Loading…' : 'More models'}
        </button>
      )}
    </>
  );
}
