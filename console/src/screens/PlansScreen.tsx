import { useMutation, useQueries, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, call, formatMoney, idempotencyKey, type Plan } from '../api/client';
import { known, remember } from '../api/known';
import { ProblemView } from '../components/ProblemView';
import { Status } from '../components/Status';
import { Link } from '../router';

export function PlansScreen({ apiKey }: { apiKey: string }) {
  const plans = useQuery({ queryKey: ['plans'], queryFn: () => call(api.GET('/api/v1/plans')) });
  const { versions, payments } = known(apiKey);
  const versionQueries = useQueries({
    queries: versions.map((id) => ({
      queryKey: ['version', id],
      queryFn: () =>
        call(api.GET('/api/v1/versions/info/{version_id}', { params: { path: { version_id: id } } })),
    })),
  });
  const ready = versionQueries.flatMap((q) => (q.data?.is_ready ? [q.data] : []));

  return (
    <>
      <h1>Plans</h1>
      <ProblemView error={plans.error} />
      {plans.isPending && <p>Loading plans…</p>}
      <ul className="grid plans">
        {plans.data?.plans.map((plan) => (
          <li key={plan.id}>
            <PlanCard plan={plan} apiKey={apiKey} ready={ready.map((v) => v.version_id)} />
          </li>
        ))}
      </ul>
      <h2>Your payments</h2>
      {payments.length === 0 ? <p>No payments from this browser yet.</p> : <PaymentList ids={payments} />}
    </>
  );
}

function PlanCard({ plan, apiKey, ready }: { plan: Plan; apiKey: string; ready: string[] }) {
  const [versionId, setVersionId] = useState('');
  const buy = useMutation({
    mutationFn: () =>
      call(
        api.POST('/api/v1/payments/create', {
          body: { plan_id: plan.id, ...(plan.is_init ? {} : { version_id: versionId }) },
          params: { header: { 'idempotency-key': idempotencyKey() } },
        }),
      ),
    onSuccess: (payment) => {
      remember(apiKey, 'payments', payment.payment_id);
      // Stripe Checkout (the sandbox's page in dev) sends the browser back to /console/checkout/return.
      window.location.assign(payment.checkout_url);
    },
  });
  const selectId = `version-${plan.id}`;
  return (
    <article className="card plan">
      <h2>{plan.name}</h2>
      <p>{plan.description}</p>
      <p className="price">{formatMoney(plan.price, plan.currency)}</p>
      <p>
        {plan.images} images{' '}
        {plan.is_init
          ? `· trains one model from ${plan.min_images}–${plan.max_images} photos`
          : '· for a ready model'}
      </p>
      {!plan.is_init && (
        <>
          <label htmlFor={selectId}>Model</label>
          <select id={selectId} value={versionId} onChange={(e) => setVersionId(e.target.value)}>
            <option value="">Choose a ready model</option>
            {ready.map((id) => (
              <option key={id} value={id}>
                {id}
              </option>
            ))}
          </select>
        </>
      )}
      <button
        type="button"
        onClick={() => buy.mutate()}
        disabled={buy.isPending || buy.isSuccess || (!plan.is_init && !versionId)}
      >
        {buy.isPending || buy.isSuccess ? 'Opening checkout…' : `Buy ${plan.name}`}
      </button>
      <ProblemView error={buy.error} />
    </article>
  );
}

function PaymentList({ ids }: { ids: string[] }) {
  const payments = useQueries({
    queries: ids.map((id) => ({
      queryKey: ['payment', id],
      queryFn: () => call(api.GET('/api/v1/payments/{payment_id}', { params: { path: { payment_id: id } } })),
    })),
  });
  return (
    <ul className="list">
      {payments.map((q, i) => (
        <li key={ids[i]} className="row">
          {q.error ? (
            <ProblemView error={q.error} />
          ) : q.data ? (
            <>
              <span>
                {q.data.plan_id} · {formatMoney(q.data.amount, q.data.currency)}
              </span>
              <Status status={q.data.status} />
              {q.data.status === 'paid' && q.data.version_id ? (
                <Link to={`/models/${q.data.version_id}`}>Model</Link>
              ) : q.data.status === 'paid' ? (
                <Link to={`/train/${q.data.payment_id}`}>Train a model</Link>
              ) : null}
            </>
          ) : (
            <span>Loading…</span>
          )}
        </li>
      ))}
    </ul>
  );
}
