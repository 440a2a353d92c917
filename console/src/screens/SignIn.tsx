import { useState, type FormEvent } from 'react';
import { api, call } from '../api/client';
import { ProblemView } from '../components/ProblemView';

/** Checks the key against an authenticated route before keeping it (in session storage only). */
export function SignIn({ onSignIn }: { onSignIn: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await call(api.GET('/api/v1/account', { headers: { Authorization: `Bearer ${key.trim()}` } }));
      onSignIn(key.trim());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="signin">
      <h1>Atelier</h1>
      <p>Sign in with your API key. It is kept in this tab only and forgotten when you close it.</p>
      <form onSubmit={submit} className="card">
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          required
          value={key}
          onChange={(e) => setKey(e.target.value)}
        />
        <button type="submit" disabled={busy || !key.trim()}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        <ProblemView error={error} />
      </form>
    </main>
  );
}
