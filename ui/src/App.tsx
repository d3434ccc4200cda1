import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { api, ok, setCsrfToken, setUnauthorizedHandler } from './api/client';
import type { Me, Session, SystemInfo } from './api/types';
import { SessionCtx, useSession, type SessionContext } from './session';
import { Link, href, navigate, useRoute, type Route } from './router';
import { SignIn } from './views/SignIn';
import { Projects } from './views/Projects';
import { Repositories } from './views/Repositories';
import { Tags } from './views/Tags';
import { ArtifactView } from './views/Artifact';
import { ProjectSettings } from './views/ProjectSettings';
import { Admin } from './views/Admin';
import { SearchView } from './views/Search';
import { ThemeToggle } from './theme';

type State = { phase: 'loading' } | { phase: 'signed-out'; reason?: string } | { phase: 'signed-in'; session: Session };
/** What role-dependent views need before their first paint: the caller's roles and the features. */
type Context = { me: Me | null; info: SystemInfo | null };

/**
 * A hint (not a credential) that this browser had a session: then /me and /system/info are asked
 * at once, beside GET /api/v1/session, instead of one round trip after the other.
 */
const HINT = 'berth.session';
function hint(value?: boolean): boolean {
  try {
    if (value === true) localStorage.setItem(HINT, '1');
    else if (value === false) localStorage.removeItem(HINT);
    return localStorage.getItem(HINT) === '1';
  } catch {
    return false;
  }
}

function loadContext(): Promise<Context> {
  return Promise.all([
    ok<Me>(api.GET('/api/v1/me')).catch(() => null),
    ok<SystemInfo>(api.GET('/api/v1/system/info')).catch(() => null),
  ]).then(([me, info]) => ({ me, info }));
}

export function App() {
  const [state, setState] = useState<State>({ phase: 'loading' });
  const [context, setContext] = useState<Context | null>(null);
  const early = useRef<Promise<Context> | null>(null);
  if (early.current === null && state.phase === 'loading' && hint()) early.current = loadContext();

  const signedIn = useCallback((session: Session) => {
    setCsrfToken(session.csrfToken);
    hint(true);
    const pending = early.current ?? loadContext();
    early.current = null;
    setState({ phase: 'signed-in', session });
    void pending.then(setContext);
  }, []);
  const signedOut = useCallback((reason?: string) => {
    setCsrfToken(null);
    hint(false);
    early.current = null;
    setContext(null);
    setState({ phase: 'signed-out', reason });
  }, []);

  useEffect(() => {
    setUnauthorizedHandler(() => signedOut('Your session expired. Sign in again.'));
    ok<Session>(api.GET('/api/v1/session')).then(signedIn, () => signedOut());
  }, [signedIn, signedOut]);

  useEffect(() => {
    if (state.phase !== 'signed-in') return;
    // Expiry: the server ends the session at expiresAt; so does the UI.
    const left = Date.parse(state.session.expiresAt ?? '') - Date.now();
    if (!(left > 0)) return;
    const timer = setTimeout(() => signedOut('Your session expired. Sign in again.'), Math.min(left, 2 ** 31 - 1));
    return () => clearTimeout(timer);
  }, [state, signedOut]);

  const signOut = useCallback(async () => {
    await api.DELETE('/api/v1/session').catch(() => undefined);
    signedOut('You are signed out.');
    navigate('/', true);
  }, [signedOut]);

  if (state.phase === 'signed-out') return <SignIn reason={state.reason} onSignedIn={signedIn} />;
  // Nothing renders before the session, the roles and the features are known: the first paint
  // is final (no delete column, settings link or administration tab appearing a moment later).
  if (state.phase !== 'signed-in' || !context) return <div className="boot" aria-busy="true" />;
  const ctx: SessionContext = { session: state.session, info: context.info, me: context.me, signOut };
  return (
    <SessionCtx.Provider value={ctx}>
      <Shell />
    </SessionCtx.Provider>
  );
}

function Shell() {
  const route = useRoute();
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <Header />
      <main id="main" tabIndex={-1}>
        {/* A new route is a fresh view (no filter or form state carried from the last page). */}
        <View key={`${route.path}?${route.query.toString()}`} route={route} />
      </main>
    </>
  );
}

/**
 * The view of the current route. A component of its own at module level: declared inside Shell,
 * it was a new component type at each Shell render, and React remounted the whole view (losing an
 * open form's state) whenever Shell rendered for any reason. Shell keys it by the route instead.
 */
function View({ route }: { route: Route }) {
  const [first, second, third, fourth] = route.parts;
  if (first === 'projects' && second && third === 'settings') return <ProjectSettings project={second} tab={fourth ?? 'members'} />;
  if (first === 'projects' && second) return <Repositories project={second} />;
  if (first === 'repository') return <Tags repository={route.query.get('name') ?? ''} />;
  if (first === 'artifact')
    return <ArtifactView repository={route.query.get('repository') ?? ''} reference={route.query.get('reference') ?? ''} />;
  if (first === 'admin') return <Admin tab={second ?? 'users'} />;
  if (first === 'search') return <SearchView q={route.query.get('q') ?? ''} />;
  return <Projects />;
}

function Header() {
  return (
    <header className="top">
      <Link to="/" className="brand">
        <span aria-hidden="true">⚓</span> Berth
      </Link>
      <nav aria-label="Main">
        <Link to="/">Projects</Link>
        <AdminLink />
      </nav>
      <SearchBox />
      <ThemeToggle />
      <UserMenu />
    </header>
  );
}

function AdminLink() {
  const { session } = useSession();
  return session.admin ? <Link to={href.admin()}>Administration</Link> : null;
}

function SearchBox() {
  const route = useRoute();
  const [q, setQ] = useState(route.parts[0] === 'search' ? (route.query.get('q') ?? '') : '');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (q.trim()) navigate(href.search(q.trim()));
  };
  return (
    <form role="search" className="search" onSubmit={submit}>
      <label htmlFor="global-search" className="visually-hidden">
        Search repositories and tags
      </label>
      <input id="global-search" type="search" placeholder="Search repositories and tags" value={q} onChange={(e) => setQ(e.target.value)} />
    </form>
  );
}

function UserMenu() {
  const { session, signOut } = useSession();
  return (
    <div className="user">
      <span title={session.admin ? 'system administrator' : undefined}>
        {session.username}
        {session.admin ? ' (admin)' : ''}
      </span>
      <button type="button" onClick={signOut}>
        Sign out
      </button>
    </div>
  );
}
