import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, call, idempotencyKey } from '../api/client';
import { DeleteModel } from '../components/DeleteModel';
import { Gallery } from '../components/Gallery';
import { ProblemView } from '../components/ProblemView';
import { PromptForm } from '../components/PromptForm';
import { isRunning, Status } from '../components/Status';
import { Link } from '../router';

export function ModelScreen({ versionId }: { versionId: string }) {
  const queries = useQueryClient();
  const version = useQuery({
    queryKey: ['version', versionId],
    queryFn: () =>
      call(api.GET('/api/v1/versions/info/{version_id}', { params: { path: { version_id: versionId } } })),
    refetchInterval: (q) => (q.state.data && !isRunning(q.state.data.status) ? false : 2000),
  });
  const cancel = useMutation({
    mutationFn: () =>
      call(
        api.POST('/api/v1/versions/{version_id}/cancel', {
          params: { path: { version_id: versionId } },
        }),
      ),
    onSettled: () => queries.invalidateQueries({ queryKey: ['version', versionId] }),
  });

  const v = version.data;
  return (
    <>
      <p>
        <Link to="/models">← Models</Link>
      </p>
      <h1>{v ? v.trigger_word || v.class : 'Model'}</h1>
      <ProblemView error={version.error} />
      {v && (
        <section className="card" aria-labelledby="model-status">
          <h2 id="model-status">
            Status <Status status={v.status} />
          </h2>
          <dl className="facts">
            <dt>Class</dt>
            <dd>{v.class}</dd>
            <dt>Trigger word</dt>
            <dd>{v.trigger_word || '—'}</dd>
            <dt>Credits</dt>
            <dd data-testid="credits">
              {v.images.remaining} of {v.images.granted} images left ({v.images.used} used)
            </dd>
            <dt>Training time</dt>
            <dd>{v.training_seconds != null ? `${Math.round(v.training_seconds)} s` : '—'}</dd>
            <dt>Id</dt>
            <dd className="mono">{v.version_id}</dd>
          </dl>
          {v.error && <p className="problem">{v.error}</p>}
          {isRunning(v.status) && (
            <>
              <p aria-live="polite">Training… this page updates by itself.</p>
              <button
                type="button"
                className="secondary"
                onClick={() => cancel.mutate()}
                disabled={cancel.isPending}
              >
                Cancel training
              </button>
            </>
          )}
          {v.is_ready && (
            <p className="actions wrap">
              <Link to={`/offers?version=${v.version_id}`}>Run an offer or a pack</Link>
              <Link to="/plans">Buy more images</Link>
            </p>
          )}
          <ProblemView error={cancel.error} />
        </section>
      )}
      {v?.is_ready && (
        <PromptForm versionId={versionId} remaining={v.images.remaining} makeKey={idempotencyKey} />
      )}
      {v && v.status === 'succeeded' && <Gallery versionId={versionId} />}
      {v && <DeleteModel version={v} />}
    </>
  );
}
