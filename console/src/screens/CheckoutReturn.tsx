import { useQuery } from '@tanstack/react-query';
import { api, call } from '../api/client';
import { ProblemView } from '../components/ProblemView';
import { Status } from '../components/Status';
import { Link, useLocation } from '../router';

/** Where Stripe Checkout sends the browser back; the webhook decides the payment's state, so wait for it. */
export function CheckoutReturn({ paymentId }: { paymentId: string | null }) {
  const { search } = useLocation();
  const canceled = search.get('canceled') === '1';
  const payment = useQuery({
    queryKey: ['payment', paymentId],
    enabled: Boolean(paymentId),
    queryFn: () =>
      call(api.GET('/api/v1/payments/{payment_id}', { params: { path: { payment_id: paymentId! } } })),
    refetchInterval: (q) => (q.state.data?.status === 'pending' && !canceled ? 1000 : false),
  });
  const p = payment.data;
  return (
    <>
      <h1>Checkout</h1>
      {!paymentId && <p>No payment to show.</p>}
      <ProblemView error={payment.error} />
      {p && (
        <section className="card" aria-live="polite">
          <p>
            Payment <Status status={p.status} />
          </p>
          {p.status === 'pending' && !canceled && <p>Waiting for the payment to be confirmed…</p>}
          {p.status === 'pending' && canceled && <p>The payment was not completed. Nothing was charged.</p>}
          {p.status === 'paid' && !p.version_id && (
            <p>
              <Link to={`/train/${p.payment_id}`} className="button">
                Train a model
              </Link>
            </p>
          )}
          {p.status === 'paid' && p.version_id && (
            <p>
              Credits added. <Link to={`/models/${p.version_id}`}>Open the model</Link>
            </p>
          )}
          {p.status === 'failed' && <p>The payment failed. You can try again from the plans.</p>}
        </section>
      )}
      <p>
        <Link to="/plans">Back to plans</Link>
      </p>
    </>
  );
}
