import { useQueries } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, call } from '../api/client';
import { known, remember } from '../api/known';
import { ProblemView } from '../components/ProblemView';
import { isRunning, Status } from '../components/Status';
import { Link, navigate } from '../router';

export function ModelsScreen({ apiKey }: { apiKey: string }) {
  const { versions } = known(apiKey);
  const [openId, setOpenId] = useState('');
  const list = useQueries({
    queries: versions.map((id) => ({
      queryKey: ['version', id],
      queryFn: () =>
        call(api.GET('/api/v1/versions/info/{version_id}', { params: { path: { version_id: id } } })),
      // Live status: poll while the training runs, stop once it has an outcome.
      refetchInterval: (q: { state: { data?: { status: string } } }) =>
        q.state.data && !isRunning(q.state.data.status) ? false : 2000,
    })),
  });
  const open = (e: FormEvent) => {
    e.preventDefault();
    remember(apiKey, 'versions', openId.trim());
    navigate(`/models/${openId.trim()}`);
  };

  return (
    <>
      <h1>Models</h1>
      {versions.length === 0 && (
        <p>
          No models yet. <Link to="/plans">Buy a training plan</Link> to train your first one.
        </p>
      )}
      <ul className="grid models">
        {list.map((q, i) => (
          <li key={versions[i]} className="card">
            {q.error ? (
              <ProblemView error={q.error} />
            ) : q.data ? (
              <>
                <h2>
                  <Link to={`/models/${q.data.version_id}`}>
                    {q.data.trigger_word || q.data.class} <span className="muted">({q.data.class})</span>
                  </Link>
                </h2>
                <p>
                  <Status status={q.data.status} />
                  {q.data.is_ready && <> · {q.data.images.remaining} images left</>}
                </p>
                <p className="muted small">Created {new Date(q.data.created_at).toLocaleString()}</p>
              </>
            ) : (
              <p>Loading…</p>
            )}
          </li>
        ))}
      </ul>
      <form className="card inline" onSubmit={open}>
        <label htmlFor="open-id">Open a model by id</label>
        <input
          id="open-id"
          value={openId}
          onChange={(e) => setOpenId(e.target.value)}
          pattern="[0-9a-fA-F-]{36}"
          required
        />
        <button type="submit">Open</button>
      </form>
    </>
  );
}
