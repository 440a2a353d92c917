import { useInfiniteQuery, useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, call, formatMoney, idempotencyKey, type Payment, type Plan } from '../api/client';
import { ProblemView } from '../components/ProblemView';
import { Status } from '../components/Status';
import { Link } from '../router';

export function PlansScreen() {
  const plans = useQuery({ queryKey: ['plans'], queryFn: () => call(api.GET('/api/v1/plans')) });
  // Add-on plans buy images for a ready model: offer the ready ones (first 100).
  const ready = useQuery({
    queryKey: ['versions', 'succeeded', 'all'],
    queryFn: () =>
      call(api.GET('/api/v1/versions', { params: { query: { status: 'succeeded', limit: 100 } } })),
  });
  const readyIds = ready.data?.versions.filter((v) => v.is_ready).map((v) => v.version_id) ?? [];

  return (
    <>
      <h1>Plans</h1>
      <ProblemView error={plans.error} />
      {plans.isPending && <p>Loading plans…</p>}
      <ul className="grid plans">
        {plans.data?.plans.map((plan) => (
          <li key={plan.id}>
            <PlanCard plan={plan} ready={readyIds} />
          </li>
        ))}
      </ul>
      <h2>Your payments</h2>
      <PaymentList />
    </>
  );
}

function PlanCard({ plan, ready }: { plan: Plan; ready: string[] }) {
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

function PaymentList() {
  const payments = useInfiniteQuery({
    queryKey: ['payments'],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      call(
        api.GET('/api/v1/payments', {
          params: { query: { limit: 10, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const list: Payment[] = payments.data?.pages.flatMap((p) => p.payments) ?? [];
  return (
    <>
      <ProblemView error={payments.error} />
      {payments.data && list.length === 0 && <p>No payments yet.</p>}
      <ul className="list">
        {list.map((p) => (
          <li key={p.payment_id} className="row">
            <span>
              {p.plan_id} · {formatMoney(p.amount, p.currency)} ·{' '}
              <span className="muted">{new Date(p.created_at).toLocaleString()}</span>
            </span>
            <Status status={p.status} />
            {p.status === 'paid' && p.version_id ? (
              <Link to={`/models/${p.version_id}`}>Model</Link>
            ) : p.status === 'paid' ? (
              <Link to={`/train/${p.payment_id}`}>Train a model</Link>
            ) : null}
          </li>
        ))}
      </ul>
      {payments.hasNextPage && (
        <button type="button" onClick={() => payments.fetchNextPage()} disabled={payments.isFetchingNextPage}>
          More payments
        </button>
      )}
    </>
  );
}
