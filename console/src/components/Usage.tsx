import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, call, formatMoney, type UsageLine } from '../api/client';
import { Link } from '../router';
import { ProblemView } from './ProblemView';

/** `yyyy-mm-dd` (a date input's value) as the UTC instant it starts, `days` later. */
const startOf = (day: string, days = 0) => {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString();
};

const money = (line: UsageLine) => (line.currency ? formatMoney(line.amount_paid, line.currency) : '—');

/** What the account used in a range of UTC days, per model and in total (GET /api/v1/usage). */
export function Usage() {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const usage = useQuery({
    queryKey: ['usage', from, to],
    queryFn: () =>
      call(
        api.GET('/api/v1/usage', {
          params: {
            query: {
              ...(from ? { from: startOf(from) } : {}),
              // The API's range is [from, to): the day picked as "to" is included, so end after it.
              ...(to ? { to: startOf(to, 1) } : {}),
            },
          },
        }),
      ),
    placeholderData: keepPreviousData,
  });
  const versions = useQuery({
    queryKey: ['versions', '', 'all'],
    queryFn: () => call(api.GET('/api/v1/versions', { params: { query: { limit: 100 } } })),
  });
  const names = new Map(versions.data?.versions.map((v) => [v.version_id, v.trigger_word || v.class]));
  const u = usage.data;
  return (
    <section className="card" aria-labelledby="usage-title" aria-busy={usage.isFetching}>
      <h2 id="usage-title">Usage</h2>
      <div className="range">
        <div>
          <label htmlFor="usage-from">From (UTC day)</label>
          <input
            id="usage-from"
            type="date"
            value={from}
            max={to || undefined}
            onChange={(e) => setFrom(e.target.value)}
          />
        </div>
        <div>
          <label htmlFor="usage-to">To (UTC day, included)</label>
          <input
            id="usage-to"
            type="date"
            value={to}
            min={from || undefined}
            onChange={(e) => setTo(e.target.value)}
          />
        </div>
      </div>
      <p className="small muted">{from || to ? `${from || 'the start'} to ${to || 'now'}` : 'All time'}</p>
      <ProblemView error={usage.error} />
      {u && (
        <div className="table-scroll">
          <table className="usage">
            <caption className="visually-hidden">Usage per model and in total</caption>
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Images</th>
                <th scope="col">Trainings</th>
                <th scope="col">Predict time</th>
                <th scope="col">Paid</th>
              </tr>
            </thead>
            <tbody>
              {u.versions.map((line) => (
                <tr key={line.version_id ?? 'none'}>
                  <th scope="row">
                    {line.version_id ? (
                      <Link to={`/models/${line.version_id}`}>
                        {names.get(line.version_id) ?? line.version_id.slice(0, 8)}
                      </Link>
                    ) : (
                      'No model yet'
                    )}
                  </th>
                  <td>{line.images}</td>
                  <td>{line.trainings}</td>
                  <td>{line.predict_seconds.toFixed(1)} s</td>
                  <td>{money(line)}</td>
                </tr>
              ))}
              {u.versions.length === 0 && (
                <tr>
                  <td colSpan={5}>Nothing used in this range.</td>
                </tr>
              )}
            </tbody>
            <tfoot>
              <tr data-testid="usage-total">
                <th scope="row">Total</th>
                <td>{u.total.images}</td>
                <td>{u.total.trainings}</td>
                <td>{u.total.predict_seconds.toFixed(1)} s</td>
                <td>{money(u.total)}</td>
              </tr>
            </tfoot>
          </table>
        </div>
      )}
    </section>
  );
}
