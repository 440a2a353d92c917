import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, call, idempotencyKey, type Offer, type Pack } from '../api/client';
import { ProblemView } from '../components/ProblemView';
import { Link, navigate } from '../router';

/** Offers and packs, and a run of one on a ready model with the variables its templates need. */
export function OffersScreen({ versionId }: { versionId: string | null }) {
  const offers = useQuery({ queryKey: ['offers'], queryFn: () => call(api.GET('/api/v1/offers')) });
  const packs = useQuery({ queryKey: ['packs'], queryFn: () => call(api.GET('/api/v1/packs')) });
  const ready = useQuery({
    queryKey: ['versions', 'succeeded', 'all'],
    queryFn: () =>
      call(api.GET('/api/v1/versions', { params: { query: { status: 'succeeded', limit: 100 } } })),
  });
  const models = ready.data?.versions.filter((v) => v.is_ready) ?? [];
  const [chosen, setChosen] = useState(versionId ?? '');
  const model = models.find((v) => v.version_id === chosen) ?? (chosen ? undefined : models[0]);
  const names = new Map(offers.data?.offers.map((o) => [o.offer_id, o.name]));

  return (
    <>
      <h1>Offers and packs</h1>
      <p className="muted">
        An offer is a prompt template sold at a credit price; a pack runs several offers at once, for one
        reservation of credits. <code>{'{trigger_word}'}</code> and <code>{'{class}'}</code> come from the
        model; you give the other variables.
      </p>
      <div className="toolbar">
        <label htmlFor="run-model">Model</label>
        <select id="run-model" value={model?.version_id ?? ''} onChange={(e) => setChosen(e.target.value)}>
          {models.length === 0 && (
            <option value="">{ready.isPending ? 'Loading models…' : 'No ready model'}</option>
          )}
          {models.map((v) => (
            <option key={v.version_id} value={v.version_id}>
              {v.trigger_word || v.class} ({v.class}) · {v.images.remaining} images left
            </option>
          ))}
        </select>
      </div>
      {ready.data && models.length === 0 && (
        <p>
          Offers run on a ready model. <Link to="/plans">Buy a training plan</Link> to train one.
        </p>
      )}
      <ProblemView error={ready.error ?? offers.error ?? packs.error} />
      <h2>Packs</h2>
      {packs.data && packs.data.packs.length === 0 && <p>No packs.</p>}
      <ul className="grid">
        {packs.data?.packs.map((p) => (
          <li key={p.pack_id}>
            <RunCard item={{ kind: 'pack', pack: p }} versionId={model?.version_id} offerNames={names} />
          </li>
        ))}
      </ul>
      <h2 className="spaced">Offers</h2>
      {offers.data && offers.data.offers.length === 0 && <p>No offers.</p>}
      <ul className="grid">
        {offers.data?.offers.map((o) => (
          <li key={o.offer_id}>
            <RunCard item={{ kind: 'offer', offer: o }} versionId={model?.version_id} offerNames={names} />
          </li>
        ))}
      </ul>
    </>
  );
}

type Item = { kind: 'offer'; offer: Offer } | { kind: 'pack'; pack: Pack };

function RunCard({
  item,
  versionId,
  offerNames,
}: {
  item: Item;
  versionId: string | undefined;
  offerNames: Map<string, string>;
}) {
  const queries = useQueryClient();
  const id = item.kind === 'offer' ? item.offer.offer_id : item.pack.pack_id;
  const name = item.kind === 'offer' ? item.offer.name : item.pack.name;
  const variables = item.kind === 'offer' ? item.offer.variables : item.pack.variables;
  const price = item.kind === 'offer' ? item.offer.price_credits : item.pack.price_credits;
  const [values, setValues] = useState<Record<string, string>>({});
  const run = useMutation({
    mutationFn: (version: string) => {
      const body = { variables: Object.fromEntries(variables.map((v) => [v, values[v] ?? ''])) };
      const header = { 'idempotency-key': idempotencyKey() };
      return call(
        item.kind === 'offer'
          ? api.POST('/api/v1/offers/{offer_id}/run/{version_id}', {
              params: { path: { offer_id: id, version_id: version }, header },
              body,
            })
          : api.POST('/api/v1/packs/{pack_id}/run/{version_id}', {
              params: { path: { pack_id: id, version_id: version }, header },
              body,
            }),
      );
    },
    onSuccess: (r) => {
      void queries.invalidateQueries({ queryKey: ['versions'] });
      navigate(`/runs/${r.run_id}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (versionId) run.mutate(versionId);
  };
  const titleId = `run-${id}`;
  return (
    <article className="card" aria-labelledby={titleId} data-kind={item.kind}>
      <h3 id={titleId}>{name}</h3>
      <p className="price">{price} credits</p>
      {item.kind === 'offer' ? (
        <>
          <p className="small">
            {item.offer.create_qty} image{item.offer.create_qty === 1 ? '' : 's'}
            {item.offer.result_expiry_days != null && <> · kept {item.offer.result_expiry_days} days</>}
          </p>
          <p className="small muted template">{item.offer.template}</p>
        </>
      ) : (
        <>
          {item.pack.discount_percent > 0 && <p className="small">{item.pack.discount_percent}% off</p>}
          <ul className="small">
            {item.pack.offer_ids.map((o) => (
              <li key={o}>{offerNames.get(o) ?? o}</li>
            ))}
          </ul>
        </>
      )}
      <form onSubmit={submit}>
        {variables.map((v) => (
          <div key={v}>
            <label htmlFor={`${id}-${v}`}>{v}</label>
            <input
              id={`${id}-${v}`}
              required
              maxLength={200}
              value={values[v] ?? ''}
              onChange={(e) => setValues((all) => ({ ...all, [v]: e.target.value }))}
            />
          </div>
        ))}
        <button type="submit" disabled={!versionId || run.isPending}>
          {run.isPending ? 'Starting…' : `Run ${name}`}
        </button>
      </form>
      <ProblemView error={run.error} />
    </article>
  );
}
