import { useQuery } from '@tanstack/react-query';
import { api, call } from '../api/client';
import { ImageGrid } from '../components/Gallery';
import { ProblemView } from '../components/ProblemView';
import { isRunning, Status } from '../components/Status';
import { Link } from '../router';

/** An offer or pack run with its prompts together, live until every prompt has ended. */
export function RunScreen({ runId }: { runId: string }) {
  const run = useQuery({
    queryKey: ['run', runId],
    queryFn: () => call(api.GET('/api/v1/runs/{run_id}', { params: { path: { run_id: runId } } })),
    refetchInterval: (q) => {
      const r = q.state.data;
      return r && r.settled_credits !== null && !r.prompts.some((p) => isRunning(p.status)) ? false : 1500;
    },
  });
  const offers = useQuery({ queryKey: ['offers'], queryFn: () => call(api.GET('/api/v1/offers')) });
  const packs = useQuery({ queryKey: ['packs'], queryFn: () => call(api.GET('/api/v1/packs')) });
  const r = run.data;
  const name =
    r &&
    (r.kind === 'pack'
      ? packs.data?.packs.find((p) => p.pack_id === r.pack_id)?.name
      : offers.data?.offers.find((o) => o.offer_id === r.offer_id)?.name);
  const done = r?.prompts.filter((p) => !isRunning(p.status)).length ?? 0;
  const images = r?.prompts.reduce((n, p) => n + p.images.length, 0) ?? 0;

  return (
    <>
      <p>
        <Link to="/offers">← Offers and packs</Link>
      </p>
      <h1>{name ?? (r?.kind === 'pack' ? 'Pack run' : 'Offer run')}</h1>
      <ProblemView error={run.error} />
      {r && (
        <>
          <section className="card" aria-labelledby="run-facts">
            <h2 id="run-facts">
              {r.kind === 'pack' ? 'Pack' : 'Offer'} run · {done} of {r.prompts.length} prompts ended
            </h2>
            <dl className="facts">
              <dt>Model</dt>
              <dd>
                <Link to={`/models/${r.version_id}`}>Open the model</Link>
              </dd>
              {Object.entries(r.variables).map(([k, v]) => (
                <div key={k} className="contents">
                  <dt>{k}</dt>
                  <dd>{v}</dd>
                </div>
              ))}
              <dt>Credits reserved</dt>
              <dd>{r.price_credits}</dd>
              <dt>Images</dt>
              <dd data-testid="run-images">
                {images} of {r.images_expected}
              </dd>
              <dt>Credits kept</dt>
              <dd>{r.settled_credits ?? 'when every prompt has ended'}</dd>
              <dt>Started</dt>
              <dd>{new Date(r.created_at).toLocaleString()}</dd>
            </dl>
          </section>
          <ol className="run-prompts">
            {r.prompts.map((p) => (
              <li key={p.prompt_id} className="card">
                <p>
                  <Status status={p.status} /> <span>{p.prompt}</span>
                </p>
                {p.error && <p className="problem">{p.error}</p>}
                <ImageGrid prompts={[p]} />
              </li>
            ))}
          </ol>
        </>
      )}
    </>
  );
}
