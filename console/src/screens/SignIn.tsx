import { useState, type FormEvent } from 'react';
import { ProblemError, asProblem } from '../api/client';
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
      // A well-formed id nobody owns: 404 means the key is good, 401 that it is not.
      const res = await fetch(`/api/v1/payments/00000000-0000-4000-8000-000000000000`, {
        headers: { Authorization: `Bearer ${key.trim()}` },
      });
      if (res.status === 401 || res.status >= 500) {
        throw new ProblemError(asProblem(await res.json().catch(() => undefined), res.status));
      }
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
