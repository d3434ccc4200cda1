import { useState, type FormEvent } from 'react';
import { api, ok } from '../api/client';
import type { AuditEntry, Job, User } from '../api/types';
import { ErrorBox, Tabs, useAsync } from '../components';
import { bytes } from '../format';
import { useTitle, href } from '../router';
import { useSession } from '../session';
import { ObjectTable } from './generic';
import { Robots } from './ProjectSettings';
import { useAction } from './forms';
import { Registries } from './Registries';
import { Replication } from './Replication';

const TABS: [string, string][] = [
  ['users', 'Users'],
  ['robots', 'System robots'],
  ['registries', 'Registry endpoints'],
  ['replication', 'Replication'],
  ['jobs', 'Jobs'],
  ['audit', 'Audit log'],
  ['storage', 'Storage'],
];

export function Admin({ tab }: { tab: string }) {
  useTitle('Administration');
  const { session } = useSession();
  if (!session.admin)
    return (
      <p className="error" role="alert">
        Administration is for system administrators.
      </p>
    );
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Administration</h1>
      <Tabs label="Administration" tabs={TABS} current={tab} hrefOf={(t) => href.admin(t)} />
      <div className="tab-panel">
        {tab === 'users' ? <Users /> : null}
        {tab === 'robots' ? <SystemRobots /> : null}
        {tab === 'registries' ? <Registries /> : null}
        {tab === 'replication' ? <Replication /> : null}
        {tab === 'jobs' ? <Jobs /> : null}
        {tab === 'audit' ? <Audit /> : null}
        {tab === 'storage' ? <Storage /> : null}
      </div>
    </section>
  );
}

function rowsOf(data: unknown): Record<string, unknown>[] {
  if (Array.isArray(data)) return data as Record<string, unknown>[];
  const o = data as Record<string, unknown> | undefined;
  for (const key of ['items', 'entries', 'policies', 'registries', 'runs'])
    if (o && Array.isArray(o[key])) return o[key] as Record<string, unknown>[];
  return [];
}

function Users() {
  const users = useAsync(() => ok<User[]>(api.GET('/api/v1/users')), []);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [admin, setAdmin] = useState(false);
  const action = useAction();
  /** Runs an API call; the list reloads after it, whether it worked or not (the error shows). */
  const act = async (call: Promise<{ response: Response; error?: unknown }>) => {
    await action.run(() => ok(call));
    users.reload();
  };
  const create = async (event: FormEvent) => {
    event.preventDefault();
    const created = await action.run(() => ok(api.POST('/api/v1/users', { body: { username, password, admin } as never })));
    if (created === undefined) return;
    setUsername('');
    setPassword('');
    users.reload();
  };
  return (
    <>
      <h2>Users</h2>
      <ErrorBox error={users.error ?? action.error} />
      <ObjectTable
        caption="Users"
        rows={(users.data ?? []) as never[]}
        actions={(u) => (
          <>
            <button
              type="button"
              className="small"
              onClick={() =>
                void act(
                  api.PATCH('/api/v1/users/{username}', { params: { path: { username: String(u.username) } }, body: { admin: !u.admin } }),
                )
              }
            >
              {u.admin ? `Revoke administrator (${String(u.username)})` : `Make administrator (${String(u.username)})`}
            </button>{' '}
            <button
              type="button"
              className="danger small"
              onClick={() =>
                window.confirm(`Delete user ${String(u.username)}?`) &&
                void act(api.DELETE('/api/v1/users/{username}', { params: { path: { username: String(u.username) } } }))
              }
            >
              Delete {String(u.username)}
            </button>
          </>
        )}
      />
      <form className="inline-form" onSubmit={create} aria-label="New user">
        <label htmlFor="user-name">Username</label>
        <input id="user-name" required value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="off" />
        <label htmlFor="user-password">Password</label>
        <input
          id="user-password"
          type="password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          autoComplete="new-password"
        />
        <label>
          <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.target.checked)} /> administrator
        </label>
        <button type="submit" className="primary">
          Create user
        </button>
      </form>
    </>
  );
}

function SystemRobots() {
  return <Robots project={null} />;
}

function Jobs() {
  const [job, setJob] = useState('');
  const jobs = useAsync(
    () => ok<{ jobs: Job[]; runs: Record<string, unknown>[] }>(api.GET('/api/v1/jobs', { params: { query: job ? { job } : {} } as never })),
    [job],
  );
  const [error, setError] = useState<Error>();
  const [started, setStarted] = useState<string | null>(null);
  const run = async (name: string) => {
    try {
      await ok(api.POST('/api/v1/jobs/{name}/run', { params: { path: { name } } }));
      setStarted(name);
      setError(undefined);
      setTimeout(jobs.reload, 1000);
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <>
      <h2>Jobs</h2>
      <ErrorBox error={jobs.error ?? error} />
      {started ? <p role="status">Started {started}.</p> : null}
      <ObjectTable
        caption="Jobs"
        rows={(jobs.data?.jobs ?? []) as never[]}
        actions={(j) => (
          <>
            <button type="button" className="small" onClick={() => run(String(j.name))}>
              Run now
            </button>{' '}
            <button type="button" className="small" onClick={() => setJob(String(j.name))}>
              History
            </button>
          </>
        )}
      />
      <h3>Recent runs{job ? ` of ${job}` : ''}</h3>
      {job ? (
        <button type="button" className="small" onClick={() => setJob('')}>
          All jobs
        </button>
      ) : null}
      <ObjectTable caption="Job runs" rows={jobs.data?.runs ?? []} />
    </>
  );
}

function Audit() {
  const [filters, setFilters] = useState({ actor: '', action: '', project: '', outcome: '' });
  const [applied, setApplied] = useState(filters);
  const entries = useAsync(() => {
    const query = Object.fromEntries(Object.entries(applied).filter(([, v]) => v));
    return ok<AuditEntry[] | { entries: AuditEntry[] }>(
      api.GET('/api/v1/audit', { params: { query: { ...query, limit: '100' } as never } }),
    );
  }, [JSON.stringify(applied)]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setApplied(filters);
  };
  return (
    <>
      <h2>Audit log</h2>
      <form className="inline-form" onSubmit={submit} aria-label="Audit filters">
        {(['actor', 'action', 'project', 'outcome'] as const).map((k) => (
          <span key={k}>
            <label htmlFor={`audit-${k}`}>{k}</label>{' '}
            <input id={`audit-${k}`} value={filters[k]} onChange={(e) => setFilters({ ...filters, [k]: e.target.value })} size={12} />
          </span>
        ))}
        <button type="submit" className="primary">
          Filter
        </button>
      </form>
      <ErrorBox error={entries.error} />
      <ObjectTable caption="Audit entries" rows={rowsOf(entries.data)} />
    </>
  );
}

function Storage() {
  const storage = useAsync(() => ok<Record<string, unknown>>(api.GET('/api/v1/storage')), []);
  const s = storage.data ?? {};
  const scalars = Object.entries(s).filter(([, v]) => typeof v === 'number');
  const projects = rowsOf(s.projects);
  const repositories = rowsOf(s.repositories);
  return (
    <>
      <h2>Storage</h2>
      <ErrorBox error={storage.error} />
      <dl className="facts">
        {scalars.map(([k, v]) => (
          <div className="fact" key={k}>
            <dt>{k}</dt>
            <dd>{/bytes|size/i.test(k) ? bytes(v as number) : String(v)}</dd>
          </div>
        ))}
      </dl>
      {projects.length ? <ObjectTable caption="Per project" rows={projects} /> : null}
      {repositories.length ? <ObjectTable caption="Per repository" rows={repositories.slice(0, 200)} /> : null}
    </>
  );
}
