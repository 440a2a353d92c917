import { useQuery } from '@tanstack/react-query';
import { api, call } from '../api/client';
import { ProblemView } from '../components/ProblemView';
import { Usage } from '../components/Usage';

/** Who I am, the tier and limits I am held to, my credits over every model and what I used. */
export function AccountScreen() {
  const account = useQuery({ queryKey: ['account'], queryFn: () => call(api.GET('/api/v1/account')) });
  const a = account.data;
  return (
    <>
      <h1>Account and usage</h1>
      <ProblemView error={account.error} />
      {a && (
        <div className="grid">
          <section className="card" aria-labelledby="credits-title">
            <h2 id="credits-title">Credits</h2>
            <p className="price" data-testid="account-credits">
              {a.credits.remaining} images left
            </p>
            <p className="muted">
              {a.credits.granted} granted, {a.credits.used} used, over all your models
            </p>
          </section>
          <section className="card" aria-labelledby="account-title">
            <h2 id="account-title">{a.email}</h2>
            <dl className="facts">
              <dt>Tier</dt>
              <dd>{a.tier}</dd>
              <dt>Reads</dt>
              <dd>{a.limits.reads_per_minute} a minute</dd>
              <dt>Writes</dt>
              <dd>{a.limits.writes_per_minute} a minute</dd>
              <dt>Prompts at once</dt>
              <dd>{a.limits.prompts_at_once ?? 'no limit'}</dd>
              <dt>Member since</dt>
              <dd>{new Date(a.created_at).toLocaleDateString()}</dd>
              <dt>Id</dt>
              <dd className="mono">{a.account_id}</dd>
            </dl>
          </section>
        </div>
      )}
      <Usage />
    </>
  );
}
