import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { session } from './api/client';
import { Link, navigate, useLocation } from './router';
import { AccountScreen } from './screens/AccountScreen';
import { CheckoutReturn } from './screens/CheckoutReturn';
import { ModelScreen } from './screens/ModelScreen';
import { ModelsScreen } from './screens/ModelsScreen';
import { OffersScreen } from './screens/OffersScreen';
import { PlansScreen } from './screens/PlansScreen';
import { RunScreen } from './screens/RunScreen';
import { SignIn } from './screens/SignIn';
import { TrainScreen } from './screens/TrainScreen';
import { WebhooksScreen } from './screens/WebhooksScreen';

const NAV = [
  { to: '/models', label: 'Models' },
  { to: '/offers', label: 'Offers' },
  { to: '/plans', label: 'Plans' },
  { to: '/webhooks', label: 'Webhooks' },
  { to: '/account', label: 'Account' },
];

// A run belongs to the offers screen it was started from.
const current = (path: string, to: string) =>
  path.startsWith(to) || (to === '/offers' && path.startsWith('/runs'));

export function App() {
  const [key, setKey] = useState(session.key);
  const { path, search } = useLocation();
  const queries = useQueryClient();

  const signOut = () => {
    session.signOut();
    queries.clear();
    setKey(null);
  };
  useEffect(() => {
    // A 401 from any call: the key was revoked or mistyped; ask for it again.
    window.addEventListener('atelier:unauthorized', signOut);
    return () => window.removeEventListener('atelier:unauthorized', signOut);
  });

  if (!key) {
    return (
      <SignIn
        onSignIn={(k) => {
          session.signIn(k);
          setKey(k);
          if (path === '/') navigate('/models', true);
        }}
      />
    );
  }

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/models" className="brand">
          Atelier
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.to}>
                <Link to={n.to} aria-current={current(path, n.to) ? 'page' : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
            <li>
              <button type="button" className="link" onClick={signOut}>
                Sign out
              </button>
            </li>
          </ul>
        </nav>
      </header>
      <main id="main">
        <Screen path={path} search={search} />
      </main>
    </>
  );
}

function Screen({ path, search }: { path: string; search: URLSearchParams }) {
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'plans') return <PlansScreen />;
  if (parts[0] === 'account') return <AccountScreen />;
  if (parts[0] === 'webhooks') return <WebhooksScreen />;
  if (parts[0] === 'offers') return <OffersScreen versionId={search.get('version')} />;
  if (parts[0] === 'runs' && parts[1]) return <RunScreen runId={parts[1]} />;
  if (parts[0] === 'checkout' && parts[1] === 'return')
    return <CheckoutReturn paymentId={search.get('payment_id')} />;
  if (parts[0] === 'train' && parts[1]) return <TrainScreen paymentId={parts[1]} />;
  if (parts[0] === 'models' && parts[1]) return <ModelScreen versionId={parts[1]} />;
  return <ModelsScreen />;
}
