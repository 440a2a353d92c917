import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import {
  api,
  call,
  idempotencyKey,
  type Schemas,
  type WebhookDelivery,
  type WebhookEndpoint,
} from '../api/client';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { ProblemView } from '../components/ProblemView';
import { SecretOnce } from '../components/SecretOnce';
import { Status } from '../components/Status';

type EventType = NonNullable<Schemas['CreateWebhookEndpoint']['events']>[number];

// A Record over the API's enum: a new event type in openapi.json fails the build until it is here.
const EVENTS: Record<EventType, string> = {
  'payment.paid': 'Payment paid',
  'payment.refunded': 'Payment refunded',
  'version.processing': 'Training started',
  'version.succeeded': 'Model ready',
  'version.failed': 'Training failed',
  'version.canceled': 'Training canceled',
  'prompt.succeeded': 'Prompt succeeded',
  'prompt.failed': 'Prompt failed',
  'prompt.canceled': 'Prompt canceled',
  'webhook_endpoint.disabled': 'Endpoint disabled',
};

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : '—');

/** My webhook endpoints (create, rotate the secret, delete) and the deliveries of my events. */
export function WebhooksScreen() {
  const [secret, setSecret] = useState<{ title: string; secret: string }>();
  return (
    <>
      <h1>Webhooks</h1>
      <p className="muted">
        Atelier signs every event it sends to your endpoints (Standard Webhooks). A failing endpoint is
        retried with back-off and disabled after a day of failures; redelivering re-enables it.
      </p>
      {secret && (
        <SecretOnce title={secret.title} secret={secret.secret} onDone={() => setSecret(undefined)} />
      )}
      <div className="split">
        <NewEndpoint onCreated={(url, s) => setSecret({ title: `Endpoint added: ${url}`, secret: s })} />
        <Endpoints onRotated={(url, s) => setSecret({ title: `New secret for ${url}`, secret: s })} />
      </div>
      <Deliveries />
    </>
  );
}

function NewEndpoint({ onCreated }: { onCreated: (url: string, secret: string) => void }) {
  const queries = useQueryClient();
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<EventType[]>([]);
  const create = useMutation({
    mutationFn: () =>
      call(
        api.POST('/api/v1/webhook-endpoints', {
          params: { header: { 'idempotency-key': idempotencyKey() } },
          body: { url: url.trim(), events, description },
        }),
      ),
    onSuccess: (endpoint) => {
      onCreated(endpoint.url, endpoint.secret);
      setUrl('');
      setDescription('');
      setEvents([]);
      void queries.invalidateQueries({ queryKey: ['webhook-endpoints'] });
    },
  });
  const toggle = (e: EventType) =>
    setEvents((list) => (list.includes(e) ? list.filter((x) => x !== e) : [...list, e]));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <section className="card" aria-labelledby="new-endpoint-title">
      <h2 id="new-endpoint-title">Add an endpoint</h2>
      <form onSubmit={submit}>
        <label htmlFor="endpoint-url">URL</label>
        <input
          id="endpoint-url"
          type="url"
          required
          maxLength={2000}
          placeholder="https://example.com/atelier"
          value={url}
          onChange={(e) => setUrl(e.target.value)}
        />
        <label htmlFor="endpoint-description">Description</label>
        <input
          id="endpoint-description"
          maxLength={500}
          value={description}
          onChange={(e) => setDescription(e.target.value)}
        />
        <fieldset className="events">
          <legend>Events (none ticked: every event)</legend>
          {(Object.keys(EVENTS) as EventType[]).map((e) => (
            <label key={e} className="check">
              <input type="checkbox" checked={events.includes(e)} onChange={() => toggle(e)} />
              {EVENTS[e]} <span className="muted mono small">{e}</span>
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={create.isPending || !url.trim()}>
          {create.isPending ? 'Adding…' : 'Add endpoint'}
        </button>
      </form>
      <ProblemView error={create.error} />
    </section>
  );
}

function Endpoints({ onRotated }: { onRotated: (url: string, secret: string) => void }) {
  const list = useQuery({
    queryKey: ['webhook-endpoints'],
    queryFn: () => call(api.GET('/api/v1/webhook-endpoints')),
  });
  return (
    <section className="card" aria-labelledby="endpoints-title">
      <h2 id="endpoints-title">Your endpoints</h2>
      <ProblemView error={list.error} />
      {list.isPending && <p>Loading endpoints…</p>}
      {list.data && list.data.endpoints.length === 0 && <p>No endpoints yet.</p>}
      <ul className="list endpoints">
        {list.data?.endpoints.map((e) => (
          <EndpointRow key={e.endpoint_id} endpoint={e} onRotated={onRotated} />
        ))}
      </ul>
    </section>
  );
}

function EndpointRow({
  endpoint: e,
  onRotated,
}: {
  endpoint: WebhookEndpoint;
  onRotated: (url: string, secret: string) => void;
}) {
  const queries = useQueryClient();
  const [confirming, setConfirming] = useState(false);
  const params = { params: { path: { endpoint_id: e.endpoint_id } } };
  const rotate = useMutation({
    mutationFn: () => call(api.POST('/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret', params)),
    onSuccess: (rotated) => {
      onRotated(rotated.url, rotated.secret);
      void queries.invalidateQueries({ queryKey: ['webhook-endpoints'] });
    },
  });
  const remove = useMutation({
    // 204: no body; call() still turns any other status into the problem to show.
    mutationFn: () => call(api.DELETE('/api/v1/webhook-endpoints/{endpoint_id}', params)),
    onSuccess: () => {
      setConfirming(false);
      void queries.invalidateQueries({ queryKey: ['webhook-endpoints'] });
      void queries.invalidateQueries({ queryKey: ['webhook-deliveries'] });
    },
  });
  return (
    <li className="endpoint" data-url={e.url}>
      <p className="mono">{e.url}</p>
      <p>
        <Status status={e.status} /> {e.description && <span>{e.description}</span>}
      </p>
      <p className="small muted">
        {e.events.length ? e.events.join(', ') : 'Every event'} · added {when(e.created_at)}
      </p>
      {e.status === 'failing' && <p className="small">Failing since {when(e.failing_since)}</p>}
      {e.status === 'disabled' && (
        <p className="small problem">
          Disabled {when(e.disabled_at)}
          {e.disabled_reason ? `: ${e.disabled_reason}` : ''}. Redeliver one of its deliveries to enable it
          again.
        </p>
      )}
      {e.previous_secret_expires_at && (
        <p className="small muted">
          The previous secret also signs until {when(e.previous_secret_expires_at)}.
        </p>
      )}
      <div className="actions wrap">
        <button type="button" onClick={() => rotate.mutate()} disabled={rotate.isPending}>
          Rotate secret<span className="visually-hidden"> of {e.url}</span>
        </button>
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Delete<span className="visually-hidden"> {e.url}</span>
        </button>
      </div>
      <ProblemView error={rotate.error} />
      <ConfirmDialog
        open={confirming}
        title="Delete this endpoint?"
        confirmLabel="Delete endpoint"
        busy={remove.isPending}
        error={remove.error}
        onConfirm={() => remove.mutate()}
        onCancel={() => {
          setConfirming(false);
          remove.reset();
        }}
      >
        <p>
          <span className="mono">{e.url}</span> stops receiving events, and its deliveries are removed.
        </p>
      </ConfirmDialog>
    </li>
  );
}

const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
type DeliveryFilter = (typeof DELIVERY_STATUSES)[number] | '';

function Deliveries() {
  const [status, setStatus] = useState<DeliveryFilter>('');
  const deliveries = useInfiniteQuery({
    queryKey: ['webhook-deliveries', status],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      call(
        api.GET('/api/v1/webhook-deliveries', {
          params: {
            query: { limit: 20, ...(pageParam ? { cursor: pageParam } : {}), ...(status ? { status } : {}) },
          },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    // Follow the retries while any delivery still waits for its next attempt.
    refetchInterval: (q) =>
      q.state.data?.pages.some((p) => p.deliveries.some((d) => d.status === 'pending')) ? 3000 : false,
  });
  const list: WebhookDelivery[] = deliveries.data?.pages.flatMap((p) => p.deliveries) ?? [];
  return (
    <section className="card" aria-labelledby="deliveries-title">
      <h2 id="deliveries-title">Deliveries</h2>
      <div className="toolbar">
        <label htmlFor="delivery-filter">Show</label>
        <select
          id="delivery-filter"
          value={status}
          onChange={(e) => setStatus(e.target.value as DeliveryFilter)}
        >
          <option value="">All deliveries</option>
          {DELIVERY_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s[0]!.toUpperCase() + s.slice(1)}
            </option>
          ))}
        </select>
        <button type="button" className="secondary" onClick={() => void deliveries.refetch()}>
          Refresh
        </button>
      </div>
      <ProblemView error={deliveries.error} />
      {deliveries.data && list.length === 0 && <p>No deliveries{status ? ' with this status' : ''} yet.</p>}
      <ul className="list deliveries">
        {list.map((d) => (
          <DeliveryRow key={d.delivery_id} delivery={d} />
        ))}
      </ul>
      {deliveries.hasNextPage && (
        <button
          type="button"
          onClick={() => deliveries.fetchNextPage()}
          disabled={deliveries.isFetchingNextPage}
        >
          More deliveries
        </button>
      )}
    </section>
  );
}

function DeliveryRow({ delivery: d }: { delivery: WebhookDelivery }) {
  const queries = useQueryClient();
  const redeliver = useMutation({
    mutationFn: () =>
      call(
        api.POST('/api/v1/webhook-deliveries/{delivery_id}/redeliver', {
          params: { path: { delivery_id: d.delivery_id } },
        }),
      ),
    onSettled: () => {
      void queries.invalidateQueries({ queryKey: ['webhook-deliveries'] });
      void queries.invalidateQueries({ queryKey: ['webhook-endpoints'] });
    },
  });
  return (
    <li className="delivery" data-event-type={d.event_type}>
      <div className="row">
        <strong>{d.event_type}</strong>
        <Status status={d.status} />
        <span className="small">
          {d.attempts} attempt{d.attempts === 1 ? '' : 's'}
          {d.last_http_status != null && <> · HTTP {d.last_http_status}</>}
        </span>
        <span className="small muted">{when(d.created_at)}</span>
        <button
          type="button"
          className="secondary"
          onClick={() => redeliver.mutate()}
          disabled={redeliver.isPending}
        >
          {redeliver.isSuccess ? 'Redelivery scheduled' : 'Redeliver'}
          <span className="visually-hidden">
            {' '}
            {d.event_type} of {when(d.created_at)}
          </span>
        </button>
      </div>
      <p className="small muted mono">{d.url}</p>
      {d.last_error && <p className="small problem">{d.last_error}</p>}
      {d.status === 'pending' && d.next_attempt_at && (
        <p className="small">Next attempt {when(d.next_attempt_at)}</p>
      )}
      <ProblemView error={redeliver.error} />
    </li>
  );
}
