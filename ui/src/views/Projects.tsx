import { useState, type FormEvent } from 'react';
import { api, ok } from '../api/client';
import type { Page, Project, Quota, RepositoryRow } from '../api/types';
import { Badge, ErrorBox, SkeletonRows, UsageBar, useAsync } from '../components';
import { bytes } from '../format';
import { Link, href, useTitle } from '../router';

/** Repository count of one project: the total of a one-row page. */
function RepoCount({ project }: { project: string }) {
  const count = useAsync(
    () => ok<Page<RepositoryRow>>(api.GET('/api/v1/projects/{project}/repositories', { params: { path: { project }, query: { n: '1' } } })),
    [project],
  );
  return <span className="num">{count.data?.total?.toLocaleString() ?? (count.error ? '—' : '…')}</span>;
}

export function Projects() {
  useTitle('Projects');
  const [filter, setFilter] = useState('');
  const projects = useAsync(() => ok<Project[]>(api.GET('/api/v1/projects')), []);
  const quotas = useAsync(() => ok<Quota[]>(api.GET('/api/v1/quotas')).catch(() => [] as Quota[]), []);
  const quotaOf = new Map((quotas.data ?? []).map((q) => [q.project, q]));
  const shown = (projects.data ?? []).filter((p) => p.name.toLowerCase().includes(filter.toLowerCase()));

  return (
    <section aria-labelledby="projects-title">
      <div className="title-row">
        <h1 id="projects-title">Projects</h1>
        <NewProject onCreated={projects.reload} />
      </div>
      <div className="toolbar">
        <label htmlFor="project-filter">Search projects</label>
        <input id="project-filter" type="search" value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="name contains…" />
      </div>
      <ErrorBox error={projects.error} />
      <table className="grid">
        <caption className="visually-hidden">Projects you can see</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Visibility</th>
            <th scope="col" className="num">
              Repositories
            </th>
            <th scope="col">Usage</th>
            <th scope="col">Quota</th>
          </tr>
        </thead>
        <tbody>
          {projects.loading && !projects.data ? <SkeletonRows columns={5} rows={5} /> : null}
          {shown.map((p) => {
            const q = quotaOf.get(p.name);
            return (
              <tr key={p.name}>
                <td>
                  <Link to={href.project(p.name)}>{p.name}</Link>
                </td>
                <td>{p.public ? <Badge tone="info">public</Badge> : <Badge tone="muted">private</Badge>}</td>
                <td className="num">
                  <RepoCount project={p.name} />
                </td>
                <td>{q ? bytes(q.used) : '—'}</td>
                <td>
                  {q ? (
                    <>
                      <UsageBar used={q.used} limit={q.limit} label={`${p.name} storage used of its quota`} />{' '}
                      {q.limit !== null ? <span className="muted">of {bytes(q.limit)}</span> : null}
                    </>
                  ) : (
                    '—'
                  )}
                </td>
              </tr>
            );
          })}
          {projects.data && shown.length === 0 ? (
            <tr>
              <td colSpan={5} className="muted">
                No projects{filter ? ` match “${filter}”` : ''}.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </section>
  );
}

function NewProject({ onCreated }: { onCreated: () => void }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  const [isPublic, setPublic] = useState(false);
  const [error, setError] = useState<Error>();
  if (!open)
    return (
      <button type="button" onClick={() => setOpen(true)}>
        New project
      </button>
    );
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    try {
      await ok(api.POST('/api/v1/projects', { body: { name, public: isPublic } }));
      setOpen(false);
      setName('');
      onCreated();
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="New project">
      <label htmlFor="new-project">Name</label>
      <input id="new-project" required value={name} onChange={(e) => setName(e.target.value)} />
      <label>
        <input type="checkbox" checked={isPublic} onChange={(e) => setPublic(e.target.checked)} /> public
      </label>
      <button type="submit" className="primary">
        Create
      </button>
      <button type="button" onClick={() => setOpen(false)}>
        Cancel
      </button>
      <ErrorBox error={error} />
    </form>
  );
}
