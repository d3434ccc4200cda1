import { useState } from 'react';
import { api, ok } from '../api/client';
import type { Page, RepositoryDeleted, RepositoryRow } from '../api/types';
import { ErrorBox, Pager, SkeletonRows, Time, useAsync, useDebounced, usePager } from '../components';
import { bytes } from '../format';
import { Link, href, useTitle } from '../router';
import { can, useSession } from '../session';

type Sort = 'name' | 'pushed' | 'pulls';
const PAGE = 50;

export function Repositories({ project }: { project: string }) {
  useTitle(`${project} · repositories`);
  const session = useSession();
  const [q, setQ] = useState('');
  const [sort, setSort] = useState<Sort>('name');
  const [order, setOrder] = useState<'asc' | 'desc'>('asc');
  const query = useDebounced(q);
  const pager = usePager(`${project}|${query}|${sort}|${order}`);
  const page = useAsync(
    () =>
      ok<Page<RepositoryRow>>(
        api.GET('/api/v1/projects/{project}/repositories', {
          params: { path: { project }, query: { q: query || undefined, sort, order, n: String(PAGE), last: pager.last } },
        }),
      ),
    [project, query, sort, order, pager.last],
  );
  const mayDelete = can(session, project, 'delete');
  const [error, setError] = useState<Error>();

  const remove = async (name: string) => {
    if (!window.confirm(`Delete repository ${name} with all its tags and artifacts?`)) return;
    try {
      const result = await ok<RepositoryDeleted>(api.DELETE('/api/v1/repositories/{name}', { params: { path: { name } } }));
      page.reload();
      // A repository with immutable tags (or manifests another policy keeps) is only partly deleted: say what stayed and why.
      if (result.failed.length > 0) {
        const kept = result.failed.map(
          (f) => `${f.digest.slice(0, 19)}… (${[...new Set([f.message, ...f.tags.map((t) => `${t.tag}: ${t.message}`)])].join('; ')})`,
        );
        setError(new Error(`${name}: deleted ${result.deleted.length} artifact(s); ${result.failed.length} stayed: ${kept.join(' · ')}`));
      }
    } catch (e) {
      setError(e as Error);
    }
  };

  const sortBy = (column: Sort) => {
    if (sort === column) setOrder(order === 'asc' ? 'desc' : 'asc');
    else {
      setSort(column);
      setOrder(column === 'name' ? 'asc' : 'desc');
    }
  };
  const ariaSort = (column: Sort) => (sort === column ? (order === 'asc' ? 'ascending' : 'descending') : undefined);
  const arrow = (column: Sort) => (sort === column ? (order === 'asc' ? ' ▲' : ' ▼') : '');

  return (
    <section aria-labelledby="repos-title">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link to="/">Projects</Link> / <span>{project}</span>
      </nav>
      <div className="title-row">
        <h1 id="repos-title">{project}</h1>
        {can(session, project, 'manage') ? (
          <Link to={href.settings(project)} className="button">
            Project settings
          </Link>
        ) : null}
      </div>
      <div className="toolbar">
        <label htmlFor="repo-filter">Search repositories</label>
        <input id="repo-filter" type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="name contains…" />
      </div>
      <ErrorBox error={page.error ?? error} />
      <table className="grid" aria-busy={page.loading}>
        <caption className="visually-hidden">Repositories of {project}</caption>
        <thead>
          <tr>
            <th scope="col" aria-sort={ariaSort('name')}>
              <button type="button" className="sort" onClick={() => sortBy('name')}>
                Name{arrow('name')}
              </button>
            </th>
            <th scope="col" className="num">
              Tags
            </th>
            <th scope="col" className="num">
              Size
            </th>
            <th scope="col" aria-sort={ariaSort('pushed')}>
              <button type="button" className="sort" onClick={() => sortBy('pushed')}>
                Last push{arrow('pushed')}
              </button>
            </th>
            <th scope="col" className="num" aria-sort={ariaSort('pulls')}>
              <button type="button" className="sort" onClick={() => sortBy('pulls')}>
                Pulls{arrow('pulls')}
              </button>
            </th>
            {mayDelete ? (
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {!page.data && page.loading ? <SkeletonRows columns={mayDelete ? 6 : 5} /> : null}
          {page.data?.items.map((r) => (
            <tr key={r.name}>
              <td>
                <Link to={href.repository(r.name)}>{r.name}</Link>
              </td>
              <td className="num">{r.tagCount.toLocaleString()}</td>
              <td className="num">{bytes(r.size)}</td>
              <td>
                <Time at={r.pushedAt} />
              </td>
              <td className="num">{r.pulls.toLocaleString()}</td>
              {mayDelete ? (
                <td>
                  <button type="button" className="danger small" onClick={() => remove(r.name)} aria-label={`Delete repository ${r.name}`}>
                    Delete
                  </button>
                </td>
              ) : null}
            </tr>
          ))}
          {page.data && page.data.items.length === 0 ? (
            <tr>
              <td colSpan={6} className="muted">
                No repositories{query ? ` match “${query}”` : ''}.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      {/* Rendered once the first page is there: below a table that grows from its skeleton, it would be pushed down (a layout shift). */}
      {page.data ? (
        <Pager
          label="repositories"
          page={pager.page}
          next={page.data?.next}
          total={page.data?.total}
          count={page.data?.items.length ?? 0}
          onNext={pager.next}
          onPrevious={pager.previous}
        />
      ) : null}
    </section>
  );
}
