import { useEffect, useState, type FormEvent } from 'react';
import { api, ok } from '../api/client';
import type { Session } from '../api/types';

interface Provider {
  name: string;
  displayName?: string;
}

export function SignIn({ reason, onSignedIn }: { reason?: string; onSignedIn: (session: Session) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [providers, setProviders] = useState<Provider[]>([]);

  useEffect(() => {
    document.title = 'Sign in · Berth';
    ok<Provider[] | { providers: Provider[] }>(api.GET('/api/v1/oidc/providers')).then(
      (answer) => setProviders(Array.isArray(answer) ? answer : (answer?.providers ?? [])),
      () => setProviders([]),
    );
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await ok<Session>(api.POST('/api/v1/session', { body: { username, password } })));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="signin">
      <form onSubmit={submit} aria-describedby={error ? 'signin-error' : undefined}>
        <h1>
          <span aria-hidden="true">⚓</span> Sign in to Berth
        </h1>
        {reason ? (
          <p className="notice" role="status">
            {reason}
          </p>
        ) : null}
        <label htmlFor="username">Username</label>
        <input
          id="username"
          name="username"
          autoComplete="username"
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        <label htmlFor="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <p id="signin-error" className="error" role="alert">
          {error ?? ''}
        </p>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {providers.length > 0 ? (
          <div className="providers">
            <p>or</p>
            {providers.map((p) => (
              // A full-page navigation: the provider's login page, back to / with a session cookie.
              <a key={p.name} className="button" href={`/api/v1/oidc/${encodeURIComponent(p.name)}/login?ui=1`}>
                Sign in with {p.displayName ?? p.name}
              </a>
            ))}
          </div>
        ) : null}
        <p className="muted small">
          The same accounts as <code>docker login</code>. Robot accounts sign in with the registry clients only.
        </p>
      </form>
    </main>
  );
}
